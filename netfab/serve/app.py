"""`fab serve`: model zips behind TensorFlow Serving's REST API, with probes, metrics and batching.

    from netfab.serve.app import ServerSettings, serve
    serve(["artifacts/deep_v1/<run_id>/model.zip"], ServerSettings(port=8501))   # until SIGTERM
    serve(["artifacts/"], ServerSettings(experiment_uri="bookings.json"))         # a model repository

    curl -d '{"instances": [{"country": "DE", ...}]}' localhost:8501/v1/models/deep_v1:predict
    curl -d '...' localhost:8501/v1/models/deep_v1/labels/canary:predict
    curl -d '...' -H 'X-User-Id: 42' localhost:8501/v1/models/bookings:predict  # an experiment's endpoint

Several models (names, versions, labels: netfab.serve.model_set) share the process and its
micro-batcher; an experiment (netfab.serve.experiment) splits an endpoint's requests across them.
What is served is one `state` ({"models": [zip URIs], "labels", "experiment"}): every admin
change builds the next state, loads what it lacks beside what serves, checks it whole, and only
then swaps it in, so a request never finds a model missing (zero failed requests).

The process listens first and loads the model second, so /healthz answers at once while
/readyz stays 503 until the model is fetched, verified, loaded and warmed up. SIGTERM makes
/readyz 503, stops accepting connections, lets every request in flight finish and exits 0.
docs/serving.md has the API, the knobs and the metrics.

aiohttp (one event loop) does HTTP and JSON; the model runs in the MicroBatcher's thread, and
TensorFlow releases the GIL while it computes, so parsing the next requests overlaps the model.
"""
import asyncio
import contextlib
import dataclasses
import errno
import gc
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable

import numpy as np
import orjson
from aiohttp import web

from netfab import model_zip, storage
from netfab.serve.batcher import MicroBatcher, QueueFull
from netfab.errors import NetfabError
from netfab.serve.experiment import ArmRoute, Experiment, ExperimentCall, ServedExperiment, answer_headers
from netfab.serve.model_set import ModelSet, find_model_zips, parse_reference
from netfab.serve.drift_tracking import DriftTracking
from netfab.serve.request_log import RequestLog, ScoredRows, new_request_id
from netfab.serve.shadow import ShadowScorer
from netfab.serve.cache import PredictionCache
from netfab.serve.connections import Runner, close_idle, json_error, json_response
from netfab.serve.workers import PUBLISH_SECONDS, WorkerGroup, run_workers
from netfab.serve.inputs import InputError
from netfab.serve.refused import Refused
from netfab.serve.oip_http import OpenInferenceHttp
from netfab.serve.metrics import ServingMetrics, merge, prometheus_text

log = logging.getLogger(__name__)

JSON = "application/json"
DRAIN_IDLE_GRACE_S = 1.0  # draining: how long a kept-alive connection may still send its next request
LONE_ROWS = 16  # a request this small, alone on the server, is scored in the event loop


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"  # 0.0.0.0 to accept other hosts (a container does)
    port: int = 8501  # TensorFlow Serving's REST port
    model_name: str = ""  # the <name> in /v1/models/<name>; "" = the zip's variant
    max_batch_rows: int = 16384  # rows per model call at most (the model's cost per row falls until ~16K)
    max_wait_ms: float = 2.0  # how long a batch may wait to fill, only under concurrent load
    max_queue_rows: int = 50_000  # rows waiting for the model before requests get 503
    timeout_s: float = 10.0  # per request, from its headers to its answer: then 408 (body late) or 504
    cache_rows: int = 0  # LRU prediction cache entries; 0 = no cache
    max_body_mb: float = 32.0  # a larger request body gets 413
    retry_after_s: int = 1  # the Retry-After of a 503
    drain_timeout_s: float = 30.0  # SIGTERM: how long requests in flight may take to finish
    idle_timeout_s: float = 15.0  # a connection without a whole request header this long after opening
    #                               or after its last answer is closed (idle keep-alive, slow headers)
    max_connections: int = 900  # open connections per process; more get 503 (below the common 1,024 files)
    admin_token: str = ""  # enables POST /admin/model with "Authorization: Bearer <token>"
    tf_threads: int = 0  # TensorFlow inter- and intra-op threads each; 0 = TensorFlow's default (cores / workers)
    workers: int = 1  # server processes sharing the port (netfab.serve.workers)
    grpc_port: int = 0  # TF Serving's and OIP v2's gRPC APIs on this port (8500 is TF Serving's); 0 = off
    labels: tuple[str, ...] = ()  # labels to start with, each "NAME/labels/LABEL=VERSION" (e.g. deep_v1/labels/stable=<run id>)
    experiment_uri: str = ""  # an experiment file (netfab.serve.experiment), re-read when it changes; "" = none
    experiment_poll_s: float = 5.0  # how often the experiment file is looked at for a change
    log_uri: str = ""  # request log: a folder or gs:// prefix for NDJSON shards; "" = off
    log_fraction: float = 0.01  # share of requests logged
    log_shard_mb: float = 64.0  # a shard is published once it holds this much
    log_shard_seconds: float = 300.0  # or once it is this old
    drift_rows_per_s: float = 2000  # rows a second binned for drift, all models and arms (netfab.serve.drift_tracking); 0 = off
    gc_young_objects: int = 20_000  # allocations between young garbage collections once serving (Python's default: 700)

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise NetfabError(f"port must be in 0..65535 (0: any free port), got {self.port}")
        if not 0 <= self.grpc_port <= 65535:
            raise NetfabError(f"grpc_port must be in 1..65535 (0: no gRPC), got {self.grpc_port}")
        if self.grpc_port and self.grpc_port == self.port:
            raise NetfabError(f"grpc_port and port are both {self.port}: gRPC needs a port of its own (8500)")
        for name in ("max_batch_rows", "max_queue_rows", "workers", "max_connections", "gc_young_objects"):
            if getattr(self, name) < 1:
                raise NetfabError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_wait_ms", "timeout_s", "max_body_mb", "cache_rows", "drain_timeout_s", "tf_threads",
                     "idle_timeout_s", "experiment_poll_s", "drift_rows_per_s"):
            if getattr(self, name) < 0:
                raise NetfabError(f"{name} must not be negative, got {getattr(self, name)}")
        start_labels(self.labels)  # a malformed --label is refused before anything loads
        if self.log_uri and not 0 < self.log_fraction <= 1:
            raise NetfabError(f"--log-fraction must be above 0 and at most 1 (the share of requests logged), "
                              f"got {self.log_fraction}")
        if self.log_shard_mb <= 0 or self.log_shard_seconds <= 0:
            raise NetfabError(f"--log-shard-mb and --log-shard-seconds must be above 0, got {self.log_shard_mb} "
                              f"and {self.log_shard_seconds}")


def model_sources(models: list[str] | None, name: str = "") -> list[str]:
    """fab serve's --model values (zips or model repositories), refused in one line when there are none."""
    if not models:
        raise NetfabError("fab serve needs --model=ZIP (a model zip fab train wrote), or a folder or gs:// prefix "
                          "of zips; repeat --model for several")
    return list(models)


def start_labels(given: tuple[str, ...]) -> dict:
    """--label values ("NAME/labels/LABEL=VERSION") as {name: {label: version}}."""
    labels: dict[str, dict] = {}
    for text in given:
        reference, _, version = text.partition("=")
        try:
            name, _, label = parse_reference(reference) if "/labels/" in reference else (None, None, None)
        except NetfabError:
            name = None
        if not name or not version:
            raise NetfabError(f"--label {text!r}: write NAME/labels/LABEL=VERSION, e.g. "
                              f"deep_v1/labels/stable=20261129-150000-1a2b3c4d (a version is a run id)")
        labels.setdefault(name, {})[label] = version
    return labels


class _BodyLate(Exception):
    """The request's body did not arrive within its time."""


def parse_body(body: bytes):
    """The request's JSON: orjson first (fast), the standard parser for what orjson refuses."""
    if not body.strip():
        raise InputError("empty request body; send a JSON object with \"instances\" (rows) or "
                         "\"inputs\" (columns)")
    try:
        return orjson.loads(body)  # refuses invalid UTF-8, lone surrogates and nesting beyond 1024
    except orjson.JSONDecodeError as error:
        try:
            # json accepts NaN/Infinity (the input check then names the row and field holding
            # it) and numbers beyond float64 such as 1e400. It also accepts lone surrogates
            # ("\ud800"), which orjson.dumps then refuses, and recurses on deep nesting.
            payload = json.loads(body)
            orjson.dumps(payload)
            return payload
        except (ValueError, RecursionError, TypeError, orjson.JSONEncodeError):
            raise InputError(f"malformed JSON body: {error}") from None


class PredictionServer:
    def __init__(self, model_uris: list[str] | str, settings: ServerSettings, group: WorkerGroup | None = None):
        self.model_uris = [model_uris] if isinstance(model_uris, str) else list(model_uris)
        self.settings, self.group = settings, group
        self.generation = 0  # of the group's wanted state (WorkerGroup.want_state) this one serves
        self.swap_error: dict | None = None
        # What is served: the state (zip URIs, labels, experiment), the models loaded for it by
        # URI, the ModelSet requests look models up in, the experiment. Replaced whole by _apply.
        self.state = {"models": [], "labels": {}, "experiment": None}
        self._loaded: dict = {}
        self._tf_configured = False  # TensorFlow's threads are set once, before its first op
        self.served = ModelSet.of([])
        self.experiment: Experiment | None = None
        self.served_experiment: ServedExperiment | None = None  # the experiment's arms and shadows in self.served
        self.batcher: MicroBatcher | None = None  # every model's requests, one thread
        self.caches: dict[tuple[str, str], PredictionCache] = {}  # (name, version) -> its scores
        self.draining = False
        self._in_flight = 0
        self.load_error: str | None = None
        self._swap_lock = asyncio.Lock()
        self._experiment_text: str | None = None  # the experiment file as last read (a change re-reads it)
        self.max_body_bytes = int(settings.max_body_mb * 2**20)
        # What a scored row is for besides its answer: the request log (the requests it samples,
        # from the event loop), drift tracking and the experiment's shadows (every row, handed over
        # per model call by scored_rows).
        self.request_log = (RequestLog(settings.log_uri, settings.log_fraction, settings.log_shard_mb,
                                       settings.log_shard_seconds) if settings.log_uri else None)
        self.drift = DriftTracking(settings.drift_rows_per_s) if settings.drift_rows_per_s else None
        from netfab.serve.model import models_in_memory

        self.metrics = ServingMetrics(queue_rows=lambda: self.batcher.queued_rows if self.batcher else 0,
                                      model=lambda: self.model, models_in_memory=models_in_memory,
                                      models=lambda: self.served, in_flight=lambda: self._in_flight,
                                      drift=lambda: self.drift.as_json() if self.drift else [])
        self.shadows = ShadowScorer(self.metrics, self.drift, self.request_log)
        self.app = self._make_app()

    @property
    def model(self):
        """The model a server of one model serves; with several, the first name's default (for
        /readyz, /openapi.json and the metrics' model line)."""
        for model in self.served:
            return self.served.find(model.name)
        return None

    # --- lifecycle ----------------------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes,
                              middlewares=[self._errors_as_json])
        model = r"/v1/models/{name:[^/:]+}"
        routes = []
        for path in (model, model + r"/versions/{version:[^/:]+}", model + r"/labels/{label:[^/:]+}"):
            routes += [web.post(path + ":predict", self.predict), web.get(path, self.status),
                       web.get(path + "/metadata", self.metadata)]
        app.add_routes([
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            *routes,
            web.get("/metrics", self.metrics_view),
            web.get("/openapi.json", self.openapi),
            web.post("/admin/model", self.admin_model),
            web.get("/admin/models", self.admin_models),
            web.post("/admin/models", self.admin_load),
            web.delete(r"/admin/models/{name:[^/]+}/versions/{version:[^/]+}", self.admin_unload),
            web.put(r"/admin/models/{name:[^/]+}/labels/{label:[^/]+}", self.admin_label),
            web.get("/admin/experiment", self.admin_experiment),
            web.put("/admin/experiment", self.admin_experiment),
            web.delete("/admin/experiment", self.admin_experiment),
            *OpenInferenceHttp(self).routes(),  # the Open Inference Protocol v2: /v2/...
        ])
        return app

    def _load_and_warm(self, uri: str):
        from netfab.serve.model import ServingModel, configure_tf_threads

        rss_before = _resident_bytes()
        # The zip is verified before TensorFlow loads: a hostile or damaged zip is refused by a
        # process that still holds only its HTTP server.
        with model_zip.ModelZip(uri) as package:
            if not self._tf_configured:  # before TensorFlow's first op; workers share the cores
                self._tf_configured = True
                configure_tf_threads(self.settings.tf_threads or
                                     (max(1, (os.cpu_count() or 1) // self.settings.workers) if self.group else 0))
            model = ServingModel.from_zip(package, self.settings.model_name or None)
        log.info("warm-up took %.2f s", model.warm_up(self.settings.max_batch_rows))
        # What the process grew by (loads run one at a time): a fair measure of a model's cost,
        # though memory another model freed before may be reused and count less.
        model.memory_bytes = max(0, _resident_bytes() - rss_before)
        return model

    async def load_model(self) -> None:
        """Load the models it was started with (and its experiment), then start batching."""
        try:
            uris = [uri for source in self.model_uris for uri in find_model_zips(source)]
            experiment = None
            if self.settings.experiment_uri:
                self._experiment_text = _read_text(self.settings.experiment_uri)
                experiment = Experiment.from_json(self._experiment_text, self.settings.experiment_uri).as_dict()
            await self._apply({"models": list(dict.fromkeys(uris)), "labels": start_labels(self.settings.labels),
                               "experiment": experiment}, source=self.settings.experiment_uri)
        except NetfabError as error:
            self.load_error = str(error)
            raise
        # The loaded models and TensorFlow are ~10^6 long-lived objects: a full garbage collection
        # walking them all takes ~10 ms, a latency spike for whichever request it lands on.
        # Freezing them leaves the collector only what requests allocate. A request allocates some
        # 20-30 objects the collector tracks and frees nearly all of them itself (reference counts),
        # so Python's default of a young collection every 700 allocations means one every few dozen
        # requests, for next to nothing found; a collection every --gc-young-objects is as safe (the
        # cycles requests leave are few and small) and cheaper (benchmarks/serve.py --only-gc).
        gc.collect()
        gc.freeze()
        gc.set_threshold(self.settings.gc_young_objects, *gc.get_threshold()[1:])
        self.batcher = MicroBatcher(self.settings.max_batch_rows, self.settings.max_wait_ms,
                                    self.settings.max_queue_rows, on_batch=self.metrics.record_batch,
                                    deliver=asyncio.get_running_loop().call_soon_threadsafe,
                                    on_scored=self.scored_rows)
        log.info("ready: %s", ", ".join(f"{m.name} version {m.version}" for m in self.served))

    async def _apply(self, state: dict, source: str = "the admin request", loaded: dict | None = None) -> None:
        """Serve `state`: load the zips it names that are not loaded (beside the ones serving), check
        the whole (ModelSet.of, Experiment.check), then swap it in. A NetfabError leaves what serves as it was.
        loaded: models already loaded for it, by URI."""
        async with self._swap_lock:
            pool = {**self._loaded, **(loaded or {})}
            for uri in state["models"]:
                if uri not in pool:
                    pool[uri] = await asyncio.get_running_loop().run_in_executor(None, self._load_and_warm, uri)
            models = ModelSet.of([pool[uri] for uri in state["models"]], state["labels"])
            experiment = Experiment.from_dict(state["experiment"], source) if state["experiment"] else None
            arm_models = experiment.check(models) if experiment is not None else {}
            if self.batcher is not None and not len(models):
                raise NetfabError("that would leave no model served; load another first")
            served_experiment = None if experiment is None else \
                ServedExperiment(experiment, arm_models, self.metrics, self.drift is not None)
            before = {(m.name, m.version) for m in self.served}
            self._loaded = {uri: pool[uri] for uri in state["models"]}
            self.served, self.experiment, self.state = models, experiment, state
            self.served_experiment = served_experiment
            # a score belongs to one model version: a cache per loaded version, none for one unloaded
            if self.settings.cache_rows:
                self.caches = {(m.name, m.version): self.caches.get((m.name, m.version)) or
                               PredictionCache(self.settings.cache_rows) for m in models}
            after = {(m.name, m.version) for m in models}
            for name, version in sorted(after - before):
                log.info("serving %s version %s", name, version)
            for name, version in sorted(before - after):
                log.info("unloaded %s version %s", name, version)
            # Requests still queued hold an unloaded model; it is released when the last one finishes.
            del pool
            gc.collect()  # frees an unloaded model if only cycles hold it: what the workers publish counts it

    @property
    def ready(self) -> bool:
        """What /readyz says: warm and not draining (with --workers: and every worker warm)."""
        return self.batcher is not None and not self.draining and (self.group is None or self.group.all_warm())

    # --- middleware ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def handling(self):
        """One request being handled, over any protocol: the drain waits for it to finish, and a
        small request scores in the event loop only when it is the one alone."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    @web.middleware
    async def _errors_as_json(self, request, handler):
        with self.handling():  # a handler starts once the headers are in: its body may still be on the way
            response = await self._answer(request, handler)
        if self.draining:  # the client opens a new connection next time: to a server that is up
            response.force_close()
        if request.path.startswith(("/v1/", "/v2/models/")):  # not the probes
            self.metrics.count_response(response.status)
        return response

    async def _answer(self, request, handler) -> web.StreamResponse:
        """The handler's response, or the JSON error for what it raised."""
        try:
            if (request.content_length or 0) > self.max_body_bytes:  # refused before a byte of it is read
                raise web.HTTPRequestEntityTooLarge(self.max_body_bytes, request.content_length)
            response = await handler(request)
        except InputError as error:  # the request's own mistake, named by the check that found it
            response = json_error(400, str(error))
        except Refused as refused:
            headers = {"Retry-After": str(refused.retry_after_s)} if refused.retry_after_s else None
            response = json_error(refused.status, refused.message, headers)
        except web.HTTPRequestEntityTooLarge:
            size = f"{request.content_length} bytes" if request.content_length else "too large"
            response = json_error(413, f"request body is {size}, over the {self.settings.max_body_mb:g} MB "
                                       f"limit; send fewer rows per request (or start fab serve with a "
                                       f"larger --max-body-mb)")
            response.force_close()  # the unread body must not be taken for the next request
        except _BodyLate:
            response = json_error(408, f"the request body did not arrive within {self.settings.timeout_s:g} s "
                                       f"(--timeout); send it at once, or fewer rows per request")
            response.force_close()
        except web.HTTPException as error:
            if error.status < 400:
                raise
            response = json_error(error.status, f"{request.method} {request.path}: {error.reason}; "
                                                f"see GET /openapi.json for the API")
        return response

    async def read_body(self, request) -> bytes:
        """The request's body, read within the request's time (a client sending slowly holds a
        connection); else 408, answered by the middleware."""
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                return await request.read()
        except TimeoutError:
            raise _BodyLate() from None

    # --- probes -------------------------------------------------------------------------------
    async def healthz(self, request):
        return json_response({"alive": True})

    async def readyz(self, request):
        if self.ready:
            return json_response({"ready": True, **self.model.describe()})
        return json_response({"ready": False, "reason": self.not_ready_reason()}, 503)

    def not_ready_reason(self) -> str:
        return ("draining after SIGTERM" if self.draining else
                f"model failed to load: {self.load_error}" if self.load_error else
                "loading and warming up the model" if self.batcher is None else
                "other workers are still loading the model")

    # --- the TensorFlow Serving API -------------------------------------------------------------
    async def status(self, request):
        """TF Serving's model status: every version of the name (or the one a version or label names)."""
        target = self._named(request)
        if isinstance(target, ExperimentCall):
            versions = sorted({self.served.find(arm).version for arm in target.experiment.arms})
        elif "version" in request.match_info or "label" in request.match_info:
            versions = [target.version]
        else:
            versions = sorted(self.served.models[target.name], reverse=True)
        return json_response({"model_version_status": [{
            "version": version, "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}} for version in versions]})

    async def metadata(self, request):
        model = self._named(request)
        return json_response({
            "model_spec": {"name": model.name, "signature_name": "", "version": model.version},
            "metadata": {"signature_def": {"signature_def": model.inputs.signature_def(
                model_zip.SERVING_SIGNATURE, model.output, len(model.classes))},
                **({"classes": model.classes} if model.classes else {})}})

    def _named(self, request):
        """The model (or experiment) a /v1/models/<name>[/versions/<v>|/labels/<l>] path names."""
        info = request.match_info
        return self.model_named(info["name"], info.get("version"), listing="/v1/models", headers=request.headers,
                                label=info.get("label"))

    async def predict(self, request):
        started = time.perf_counter()
        model = self._named(request)
        body = await self.read_body(request)
        decode_started = time.perf_counter()
        # The typed decoder reads a well-formed body in one step; any other body goes the
        # careful way, whose error names the row and the field.
        columns, row_form = model.inputs.decode(body) or self._columns(model, parse_body(body))
        rows = len(next(iter(columns.values())))
        self.metrics.observe(self.metrics.decode_seconds, time.perf_counter() - decode_started)
        scores = await self.score(model, columns, rows, started, body=body)
        encode_started = time.perf_counter()
        # TF Serving omits the output name when a model has one output: a plain list per form (a
        # list of per-class probabilities per row for a multiclass or multilabel model, whose class
        # names come beside it once, as "classes": docs/serving.md).
        answer = {"predictions" if row_form else "outputs": scores}
        if model.classes:
            answer["classes"] = model.classes
        response = web.Response(body=orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY),
                                content_type=JSON, headers=answer_headers(model))
        self.record_answer(rows, started, encode_started)
        return response

    @staticmethod
    def _columns(model, payload) -> tuple[dict, bool]:
        if not isinstance(payload, dict):
            raise InputError("the body must be a JSON object with \"instances\" (a list of rows) "
                             "or \"inputs\" (an object of columns)")
        signature = payload.get("signature_name", model_zip.SERVING_SIGNATURE)
        if signature != model_zip.SERVING_SIGNATURE:
            raise InputError(f"signature_name {signature!r} is unknown; this model has only "
                             f"{model_zip.SERVING_SIGNATURE!r}")
        if ("instances" in payload) == ("inputs" in payload):
            raise InputError("send exactly one of \"instances\" (row form: [{feature: value}, ...]) "
                             "or \"inputs\" (columnar form: {feature: [values]})")
        if "instances" in payload:
            return model.inputs.columns_from_rows(payload["instances"]), True
        return model.inputs.columns_from_inputs(payload["inputs"]), False

    async def _alone(self) -> bool:
        """No other request in the server and the model idle: nothing to batch with."""
        if self._in_flight > 1 or not self.batcher.idle:
            return False
        # Requests whose bytes came in the same poll as this one start in the next loop turn.
        await asyncio.sleep(0)
        return self._in_flight == 1 and self.batcher.idle

    def _score_here(self, model, columns, rows) -> np.ndarray:
        """A lone small request scored in this thread: no hand-over to the batcher's thread and back."""
        started = time.perf_counter()
        scores = model.predict(columns, single_threaded=True)
        self.metrics.record_batch(1, rows, time.perf_counter() - started)
        self.metrics.lone_requests.inc()
        return scores

    async def _scores(self, model, columns, rows, started, tag=None) -> np.ndarray:
        """The rows' scores: from the cache, the event loop (a lone small request) or the batcher.
        tag: what else the rows are for (scored_rows), seen to once whichever way they are scored."""
        keys, missing, requested = None, None, columns
        cache = self.caches.get((model.name, model.version)) if self.caches else None
        if cache is not None:
            scores, missing, keys = cache.lookup(columns, len(model.classes))
            self.metrics.cache_hits.inc(rows - len(missing))
            self.metrics.cache_misses.inc(len(missing))
            if len(missing) < rows:
                columns = {name: column[missing] for name, column in columns.items()}
        todo = len(missing) if missing is not None else rows
        if not todo:
            computed = scores[:0]
        elif todo <= LONE_ROWS and await self._alone():
            computed = self._score_here(model, columns, todo)
        else:
            # with a cache, the whole request is handed on below rather than the rows the model saw
            future = self.batcher.submit(columns, todo, model, asyncio.get_running_loop().create_future(),
                                         tag if cache is None else None)
            left = self.settings.timeout_s - (time.perf_counter() - started)
            # cheaper than wait_for: no extra task; a timeout cancels the future, which the batcher then skips
            async with asyncio.timeout(max(left, 0.001)):
                computed = await future
            if cache is None:
                return computed
        if cache is not None:
            cache.store([keys[i] for i in missing], computed)  # an unloaded version's cache is dropped with it
            scores[missing] = computed
            computed = scores
        if tag is not None:
            self.scored_rows(model, requested, computed, [(tag, rows)])
        return computed

    # --- what every protocol's handlers share (the REST API above, oip_http, grpc_calls) ------------
    def model_named(self, name: str, version: str | None = None, listing: str = "", headers=None,
                    label: str | None = None):
        """The model a request names (a version, or a label, if it names one), or for an experiment's
        endpoint an ExperimentCall (score() picks its arm); else Refused: 503 while loading, 404 for
        what is not served. listing: the path under which the protocol describes a model, for the
        message (e.g. /v1/models). headers: the request's, for an experiment keyed by a header."""
        # While draining, requests that still arrive on open connections are answered.
        if self.batcher is None:
            raise Refused(503, "not ready (loading the model); retry shortly", self.settings.retry_after_s)
        experiment = self.experiment
        if experiment is not None and name == experiment.endpoint:
            if version is not None or label is not None:
                raise Refused(404, f"{name!r} is an experiment's endpoint: it has no versions or labels of its own; "
                                   f"name it alone, or name a model of its arms ({', '.join(experiment.arms)})")
            served = self.served_experiment
            key = served.header
            return ExperimentCall(served, headers.get(key) if key and headers is not None else None)
        return self.served.find(name, version, label, listing=listing)

    async def score(self, model, columns: dict, rows: int, started: float, body: bytes | None = None) -> np.ndarray:
        """The scores, the REST API's way through the cache, the batcher, the queue and the timeout,
        counted in the same metrics; Refused 503 when overloaded, 504 when too slow. `model` is what
        model_named returned: an experiment's call is scored by its arms (and its shadows, after).
        body: a REST JSON body, for the request log's id column."""
        try:
            if isinstance(model, ExperimentCall):
                return await self._score_experiment(model, columns, rows, started, body)
            tag = (model.name, "", (), None) if self.drift is not None else None
            scores = await self._scores(model, columns, rows, started, tag)
            request = self._logged(body)
            if request is not None:
                self._log(model.name, "", model, columns, scores, request)
            return scores
        except QueueFull as error:
            self.metrics.rejected_requests.inc()
            raise Refused(503, f"overloaded: {error}; retry after {self.settings.retry_after_s} s",
                          self.settings.retry_after_s) from None
        except asyncio.TimeoutError:
            self.metrics.timed_out_requests.inc()
            raise Refused(504, f"no answer within {self.settings.timeout_s} s (--timeout); send fewer rows "
                               f"per request or retry later") from None

    # --- experiments ------------------------------------------------------------------------------
    def _score_experiment(self, call: ExperimentCall, columns: dict, rows: int, started: float,
                          body: bytes | None) -> Awaitable[np.ndarray]:
        """Each row scored by its arm (one arm per request, unless keyed by a feature); the shadows
        get the rows once the arm has answered them (scored_rows). The arms that answered are in
        call.answered. Not a coroutine itself: a request of one arm awaits that arm's coroutine
        directly, without one more layer to pass through at every resumption."""
        assigned = call.experiment.assign(columns, rows, call.header_value)
        request = self._logged(body)
        if isinstance(assigned, (int, np.integer)):  # the usual case: one arm, no task, no copy
            return self._score_arm(call, call.served.arms[assigned], columns, rows, started, request)
        return self._score_split(call, assigned, columns, rows, started, request)

    async def _score_split(self, call: ExperimentCall, assigned: np.ndarray, columns: dict, rows: int,
                           started: float, request: tuple | None) -> np.ndarray:
        """A request whose rows a feature key sent to several arms: each arm's rows, at once."""
        parts = [(int(arm), np.flatnonzero(assigned == arm)) for arm in np.unique(assigned)]
        scored = await asyncio.gather(*(
            self._score_arm(call, call.served.arms[arm], {name: column[part] for name, column in columns.items()},
                            len(part), started, request and (*request[:2], part))
            for arm, part in parts))
        scores = np.empty(rows, dtype=np.float32)
        for (_, part), part_scores in zip(parts, scored):
            scores[part] = part_scores
        return scores

    async def _score_arm(self, call: ExperimentCall, arm: ArmRoute, columns: dict, rows: int, started: float,
                         request: tuple | None) -> np.ndarray:
        """One arm's rows of a request, scored, measured and logged. request: (id, body, rows of the
        request) when the request log keeps it, else None (the shadows log it with theirs)."""
        model, metrics, tag = arm.model, arm.metrics, arm.tag
        if request is not None and call.served.shadows:
            tag = (*tag[:3], request)
        arm_started = time.perf_counter()
        try:
            scores = await self._scores(model, columns, rows, started, tag)
        except BaseException:
            metrics.record_error()
            raise
        metrics.record(1, rows, time.perf_counter() - arm_started, scores)
        call.answered.append(arm)
        if request is not None:
            self._log(call.name, arm.reference, model, columns, scores, request)
        return scores

    # --- what a scored row is for besides its answer ------------------------------------------------
    def scored_rows(self, model, columns: dict, scores: np.ndarray, tags: list) -> None:
        """Rows a model scored, once answered: to drift tracking, and to the shadows of the arm that
        answered them. Called by the batcher after each model call (in its thread, on the call's
        joined columns: once per call, not per request), and by the event loop for the rows the
        batcher never saw (a lone request, the prediction cache's). tags: (tag, rows) of each
        request in order; a tag is (endpoint, arm, shadows, logged request) or None (nothing to do)."""
        spans: dict[tuple, list] = {}
        offset = 0
        for tag, rows in tags:
            if tag is not None:
                spans.setdefault(tag, []).append((offset, rows))
            offset += rows
        for tag, parts in spans.items():
            tag_columns, tag_scores = columns, scores
            if len(parts) < len(tags):  # the call also scored other requests: this tag's rows alone
                rows = np.concatenate([np.arange(start, start + count) for start, count in parts])
                tag_columns = {name: column[rows] for name, column in columns.items()}
                tag_scores = scores[rows]
            endpoint, arm, shadows, request = tag
            if self.drift is not None:
                self.drift.observe(ScoredRows(endpoint, arm, "live", model, tag_columns, tag_scores, "", False))
            for reference, shadow in shadows:
                self.shadows.submit((endpoint, reference, shadow), tag_columns, len(tag_scores), len(parts), request)

    def _logged(self, body: bytes | None) -> tuple | None:
        """(id, body, None) for a request the request log keeps (one draw for all its parts), else None."""
        if self.request_log is None or not self.request_log.sample():
            return None
        return new_request_id(), body, None

    def _log(self, endpoint: str, arm: str, model, columns: dict, scores: np.ndarray, request: tuple) -> None:
        request_id, body, rows = request
        try:
            self.request_log.observe(ScoredRows(endpoint, arm, "live", model, columns, scores, request_id, True,
                                                body, rows))
        except Exception:  # the log's bug must not fail the request it logs
            log.exception("request log: a request could not be logged")

    def record_answer(self, rows: int, started: float, encode_started: float) -> None:
        """A scored request answered: its rows, its encoding time and its whole time."""
        now = time.perf_counter()
        self.metrics.observe(self.metrics.encode_seconds, now - encode_started)
        self.metrics.observe(self.metrics.request_seconds, now - started)
        self.metrics.predicted_rows.inc(rows)

    # --- metrics, docs, admin -------------------------------------------------------------------
    async def metrics_view(self, request):
        data = self.metrics.as_json()
        if self.group is not None:  # this worker's figures now, the others' as last published
            workers = [data if state["index"] == self.group.index else state["metrics"]
                       for state in self.group.states()]
            data = merge([worker for worker in workers if worker] or [data])
        if request.query.get("format") == "json":
            return json_response(data)
        return web.Response(text=prometheus_text(data), content_type="text/plain",
                            headers={"X-Prometheus-Format": "0.0.4"})

    async def openapi(self, request):
        from netfab.serve.openapi import openapi_document

        return json_response(openapi_document(self.model))

    # --- admin: what is served changes without a restart ------------------------------------------
    def _admin_refusal(self, request) -> web.Response | None:
        token = self.settings.admin_token
        if not token:
            return json_error(403, "the admin endpoint is off; start fab serve with --admin-token "
                              "(or NETFAB_ADMIN_TOKEN) to change its models over HTTP")
        if request.headers.get("Authorization") != f"Bearer {token}":
            return json_error(401, "send the admin token as 'Authorization: Bearer <token>'")
        if not self.ready:
            return json_error(503, "not ready; change models once /readyz answers 200")
        return None

    async def _admin_uri(self, request) -> str:
        payload = parse_body(await self.read_body(request))
        uri = payload.get("model") if isinstance(payload, dict) else None
        if not isinstance(uri, str) or not uri:
            raise InputError('send {"model": "URI of a model zip"}')
        return uri

    async def _change(self, request, edit, load: str | None = None) -> web.Response:
        """Serve the state `edit(state, loaded model or None)` returns: `load` loaded first (beside
        what serves), the whole checked, then swapped in, here and in every worker. 400 with the
        reason, still serving what was served, if it cannot."""
        before = self.served.describe()
        loaded = {}
        try:
            if load is not None:
                loaded[load] = self._loaded.get(load) or await asyncio.get_running_loop().run_in_executor(
                    None, self._load_and_warm, load)
            state = edit(json.loads(json.dumps(self.state)), loaded.get(load))
            await self._apply(state, loaded=loaded)
        except NetfabError as error:
            problem = str(error) if load is None or load in str(error) else f"could not load {load}: {error}"
            served = ", ".join(f"{m['name']} version {m['version']}" for m in before)
            return json_error(400, f"{problem}; still serving {served}")
        answer = {"models": self.served.describe(), "previous": before,
                  "experiment": self.experiment.as_dict() if self.experiment else None}
        if self.group is not None:
            self.generation = self.group.want_state(self.state)
            failed = await self._wait_for_workers(self.generation)
            answer["workers"] = self.group.count
            if failed:
                return json_error(500, f"worker(s) could not take the change and still serve the previous models: "
                                  f"{'; '.join(failed)}; send a change that loads to bring them in line")
        return json_response(answer)

    async def admin_model(self, request):
        """Swap: serve a model zip in the place of every version of its name (load beside, then switch)."""
        refusal = self._admin_refusal(request)
        if refusal:
            return refusal
        uri = await self._admin_uri(request)

        def swap(state, new):
            state["models"] = [u for u in state["models"] if self._loaded[u].name != new.name] + [uri]
            state["labels"].pop(new.name, None)
            return state

        response = await self._change(request, swap, load=uri)
        if response.status == 200:  # this endpoint's own answer: the model that serves now, and the one before
            answer = json.loads(response.body)
            model = self.served.find(self._loaded[uri].name).describe()
            previous = next((m for m in answer["previous"] if m["name"] == model["name"]), answer["previous"][0])
            return json_response({**answer, "model": model, "previous": previous})
        return response

    async def admin_models(self, request):
        """What is served: every model with its labels and memory, and the experiment."""
        refusal = self._admin_refusal(request)
        if refusal:
            return refusal
        return json_response({"models": [{**m, "memory_bytes": self._loaded_by_version(m).memory_bytes}
                                         for m in self.served.describe()],
                              "experiment": self.experiment.as_dict() if self.experiment else None})

    def _loaded_by_version(self, described: dict):
        return self.served.models[described["name"]][described["version"]]

    async def admin_load(self, request):
        """Load a model zip beside the ones served (a new name, or a new version of one)."""
        refusal = self._admin_refusal(request)
        if refusal:
            return refusal
        uri = await self._admin_uri(request)

        def add(state, new):
            if uri not in state["models"]:
                state["models"].append(uri)
            return state

        return await self._change(request, add, load=uri)

    async def admin_unload(self, request):
        """Unload one version; refused while a label or an experiment arm names it."""
        refusal = self._admin_refusal(request)
        if refusal:
            return refusal
        name, version = request.match_info["name"], request.match_info["version"]
        model = self.served.find(name, version)  # 404 if not served

        def remove(state, _):
            state["models"] = [u for u in state["models"] if self._loaded[u] is not model]
            return state

        return await self._change(request, remove)

    async def admin_label(self, request):
        """Point a label (stable, canary, ...) of a name at one of its loaded versions."""
        refusal = self._admin_refusal(request)
        if refusal:
            return refusal
        name, label = request.match_info["name"], request.match_info["label"]
        payload = parse_body(await self.read_body(request))
        version = payload.get("version") if isinstance(payload, dict) else None
        if not isinstance(version, str) or not version:
            raise InputError(f'send {{"version": "<run id>"}}: the version of {name} the label {label!r} points at')
        self.served.find(name, version)  # 404 naming the loaded versions

        def relabel(state, _):
            state["labels"].setdefault(name, {})[label] = version
            return state

        return await self._change(request, relabel)

    async def admin_experiment(self, request):
        """GET the experiment; PUT a new one (its JSON, as in the file: re-weights without a restart); DELETE it."""
        refusal = self._admin_refusal(request)
        if refusal:
            return refusal
        if request.method == "GET":
            return json_response({"experiment": self.experiment.as_dict() if self.experiment else None})
        experiment = None
        if request.method == "PUT":
            experiment = Experiment.from_json((await self.read_body(request)).decode("utf-8", "replace"),
                                              "in the PUT /admin/experiment body").as_dict()

        def replace(state, _):
            state["experiment"] = experiment
            return state

        return await self._change(request, replace)

    async def _watch_experiment(self) -> None:
        """Re-read --experiment's file every experiment_poll_s; a change that checks out is served."""
        uri = self.settings.experiment_uri
        while True:
            await asyncio.sleep(self.settings.experiment_poll_s)
            try:
                text = await asyncio.get_running_loop().run_in_executor(None, _read_text, uri)
                if text == self._experiment_text:
                    continue
                self._experiment_text = text
                experiment = Experiment.from_json(text, uri).as_dict()
                await self._apply({**self.state, "experiment": experiment}, source=uri)
                log.info("experiment %s changed: %s", uri, experiment)
            except NetfabError as error:  # a mistake in the file: keep serving the last good one, say why
                log.error("experiment %s not applied, still serving the previous one: %s", uri, error)

    # --- fab serve --workers: what the other workers need to know -------------------------------
    def _state(self) -> dict:
        return {"index": self.group.index, "warm": self.batcher is not None,
                "generation": self.generation, "swap_error": self.swap_error,
                # every 0.5 s: no full garbage collection each time, a latency spike for requests
                "metrics": self.metrics.as_json(collect_garbage=False) if self.batcher is not None else None}

    async def _follow_group(self) -> None:
        """Publish this worker's state, and serve what the group wants, until cancelled."""
        while True:
            self.group.publish(self._state())
            wanted = self.group.wanted_state()
            if self.batcher is not None and wanted["generation"] > self.generation:
                self.generation = wanted["generation"]
                try:
                    await self._apply(wanted["state"])
                    self.swap_error = None
                except NetfabError as error:
                    log.error("worker %d could not take the change: %s", self.group.index, error)
                    self.swap_error = {"generation": self.generation, "error": str(error)}
                continue  # publish the outcome at once
            await asyncio.sleep(PUBLISH_SECONDS)

    async def _wait_for_workers(self, generation: int, timeout: float = 600) -> list[str]:
        """Until every worker has taken up `generation`; the failures, as messages naming the worker."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [s for s in self.group.states() if s["index"] != self.group.index]
            if all(s["generation"] >= generation and s["warm"] for s in states):
                return [f"worker {s['index']}: {s['swap_error']['error']}" for s in states
                        if s["swap_error"] and s["swap_error"]["generation"] == generation]
            await asyncio.sleep(PUBLISH_SECONDS / 2)
        return [f"not every worker reported back within {timeout:g} s (see the server log)"]

    # --- running ----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Listen, load the model, serve until `stop` is set, then drain."""
        runner = Runner(self.app, self.settings.max_connections, access_log=None, handle_signals=False,
                        keepalive_timeout=self.settings.idle_timeout_s,
                        shutdown_timeout=self.settings.drain_timeout_s)
        await runner.setup()
        # Workers each bind the port; the kernel spreads new connections across them.
        site = web.TCPSite(runner, self.settings.host, self.settings.port, reuse_port=self.group is not None)
        try:
            await site.start()
        except OSError as error:  # a port in use, an address not of this machine, a name that does not resolve
            await runner.cleanup()
            what = ("another process listens there: stop it or choose another --port"
                    if error.errno == errno.EADDRINUSE else
                    "--host must be an address of this machine (127.0.0.1; 0.0.0.0 for every interface)")
            raise NetfabError(f"cannot listen on {self.settings.host}:{self.settings.port}: "
                              f"{error.strerror or error}; {what}") from None
        log.info("listening on http://%s:%d (ready once the model is warm)%s", self.settings.host,
                 self.settings.port, f", worker {self.group.index}" if self.group else "")
        grpc = None
        if self.settings.grpc_port:
            from netfab.serve.grpc_server import start_grpc, stop_grpc  # not before --workers fork

            try:
                grpc = await start_grpc(self)
            except NetfabError:
                await runner.cleanup()
                raise
        loading = asyncio.ensure_future(self.load_model())
        stopping = asyncio.ensure_future(stop.wait())
        following = asyncio.ensure_future(self._follow_group()) if self.group else None
        watching = None
        try:
            await asyncio.wait([loading, stopping], return_when=asyncio.FIRST_COMPLETED)
            if loading.done():
                loading.result()  # a model that cannot load ends the process with its error
                if self.settings.experiment_uri:
                    watching = asyncio.ensure_future(self._watch_experiment())
                await stopping
        finally:
            self.draining = True
            log.info("draining: no new connections, finishing %d request(s) in flight", self._in_flight)
            for site in list(runner.sites):
                await site.stop()
            # gRPC takes calls a little longer (stop_grpc says why), then refuses new ones and answers those in flight
            grpc_stopped = asyncio.ensure_future(stop_grpc(grpc, self.settings.drain_timeout_s, min(
                DRAIN_IDLE_GRACE_S, self.settings.drain_timeout_s))) if grpc else None
            # Wait ourselves rather than in runner.cleanup(): aiohttp's shutdown stops reading
            # from connections, which would drop a request whose body is still arriving. Every
            # answer now says Connection: close; a kept-alive connection gets a short grace to
            # send the request its client may be writing right now, then is closed if idle.
            started = time.monotonic()
            while time.monotonic() - started < self.settings.drain_timeout_s:
                if time.monotonic() - started >= min(DRAIN_IDLE_GRACE_S, self.settings.drain_timeout_s):
                    if not close_idle(runner) and not self._in_flight:
                        break
                await asyncio.sleep(0.02)
            await runner.cleanup()
            if grpc_stopped:
                await grpc_stopped
            if self.batcher:
                self.batcher.stop()
            # the last answers' shadows, scored and logged before the end
            await asyncio.get_running_loop().run_in_executor(None, self.shadows.stop, self.settings.drain_timeout_s)
            if self.request_log is not None:
                self.request_log.close()  # the last shard published whole
            loading.cancel()
            for task in (following, watching):
                if task:
                    task.cancel()
            log.info("stopped")


def serve(model_uris: list[str] | str, settings: ServerSettings) -> None:
    """Serve until SIGTERM or SIGINT; both drain and return. settings.workers > 1: that many processes.
    model_uris: model zips, or model repositories (a folder or gs:// prefix holding zips)."""
    if settings.workers > 1:
        return run_workers(run_server, model_uris, settings)
    run_server(model_uris, settings)


def run_server(model_uris: list[str] | str, settings: ServerSettings, group: WorkerGroup | None = None) -> None:
    """One server process (alone, or one worker of a group) until SIGTERM or SIGINT."""
    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await PredictionServer(model_uris, settings, group).run(stop)

    asyncio.run(main())


def _read_text(uri: str) -> str:
    """A small file's text (an experiment file) from a path or gs:// URI."""
    try:
        return storage.fetch_file(uri).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise NetfabError(f"cannot read {uri}: {error}") from None


def _resident_bytes() -> int:
    """This process's resident memory (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
