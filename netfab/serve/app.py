"""`fab serve`: a model zip behind TensorFlow Serving's REST API, with probes, metrics and batching.

    from netfab.serve.app import ServerSettings, serve
    serve("artifacts/deep_v1/<run_id>/model.zip", ServerSettings(port=8501))   # until SIGTERM

    curl -d '{"instances": [{"country": "DE", ...}]}' localhost:8501/v1/models/deep_v1:predict

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

import numpy as np
import orjson
from aiohttp import web

from netfab import model_zip
from netfab.serve.batcher import MicroBatcher, QueueFull
from netfab.errors import NetfabError
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

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise NetfabError(f"port must be in 0..65535 (0: any free port), got {self.port}")
        if not 0 <= self.grpc_port <= 65535:
            raise NetfabError(f"grpc_port must be in 1..65535 (0: no gRPC), got {self.grpc_port}")
        if self.grpc_port and self.grpc_port == self.port:
            raise NetfabError(f"grpc_port and port are both {self.port}: gRPC needs a port of its own (8500)")
        for name in ("max_batch_rows", "max_queue_rows", "workers", "max_connections"):
            if getattr(self, name) < 1:
                raise NetfabError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_wait_ms", "timeout_s", "max_body_mb", "cache_rows", "drain_timeout_s", "tf_threads",
                     "idle_timeout_s"):
            if getattr(self, name) < 0:
                raise NetfabError(f"{name} must not be negative, got {getattr(self, name)}")


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
    def __init__(self, model_uri: str, settings: ServerSettings, group: WorkerGroup | None = None):
        self.model_uri, self.settings, self.group = model_uri, settings, group
        self.generation = 0  # of the group's wanted model (WorkerGroup.want_model) this one serves
        self.swap_error: dict | None = None
        self.model = None
        self.batcher: MicroBatcher | None = None
        self.cache = PredictionCache(settings.cache_rows) if settings.cache_rows else None
        self.draining = False
        self._in_flight = 0
        self.load_error: str | None = None
        self._swap_lock = asyncio.Lock()
        self.max_body_bytes = int(settings.max_body_mb * 2**20)
        from netfab.serve.model import models_in_memory

        self.metrics = ServingMetrics(queue_rows=lambda: self.batcher.queued_rows if self.batcher else 0,
                                      model=lambda: self.model, models_in_memory=models_in_memory)
        self.app = self._make_app()

    # --- lifecycle ----------------------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes,
                              middlewares=[self._errors_as_json])
        app.add_routes([
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.post(r"/v1/models/{name:[^/:]+}:predict", self.predict),
            web.get(r"/v1/models/{name:[^/:]+}", self.status),
            web.get(r"/v1/models/{name:[^/:]+}/metadata", self.metadata),
            web.get("/metrics", self.metrics_view),
            web.get("/openapi.json", self.openapi),
            web.post("/admin/model", self.admin_model),
            *OpenInferenceHttp(self).routes(),  # the Open Inference Protocol v2: /v2/...
        ])
        return app

    def _load_and_warm(self, uri: str):
        from netfab.serve.model import ServingModel, configure_tf_threads

        # The zip is verified before TensorFlow loads: a hostile or damaged zip is refused by a
        # process that still holds only its HTTP server.
        with model_zip.ModelZip(uri) as package:
            if self.model is None:  # before TensorFlow's first op; workers share the cores
                configure_tf_threads(self.settings.tf_threads or
                                     (max(1, (os.cpu_count() or 1) // self.settings.workers) if self.group else 0))
            model = ServingModel.from_zip(package, self.settings.model_name or None)
        log.info("warm-up took %.2f s", model.warm_up(self.settings.max_batch_rows))
        return model

    async def load_model(self) -> None:
        try:
            self.model = await asyncio.get_running_loop().run_in_executor(None, self._load_and_warm,
                                                                          self.model_uri)
        except NetfabError as error:
            self.load_error = str(error)
            raise
        # The loaded model and TensorFlow are ~10^6 long-lived objects: a full garbage collection
        # walking them all takes ~10 ms, a latency spike for whichever request it lands on.
        # Freezing them leaves the collector only what requests allocate.
        gc.collect()
        gc.freeze()
        self.batcher = MicroBatcher(self.model, self.settings.max_batch_rows, self.settings.max_wait_ms,
                                    self.settings.max_queue_rows, on_batch=self.metrics.record_batch)
        log.info("ready: %s version %s", self.model.name, self.model.version)

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
        model = self.model_named(request.match_info["name"], listing="/v1/models")
        return json_response({"model_version_status": [{
            "version": model.version, "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]})

    async def metadata(self, request):
        model = self.model_named(request.match_info["name"], listing="/v1/models")
        return json_response({
            "model_spec": {"name": model.name, "signature_name": "", "version": model.version},
            "metadata": {"signature_def": {"signature_def": model.inputs.signature_def(
                model_zip.SERVING_SIGNATURE, model.output, len(model.classes))},
                **({"classes": model.classes} if model.classes else {})}})

    async def predict(self, request):
        started = time.perf_counter()
        model = self.model_named(request.match_info["name"], listing="/v1/models")
        body = await self.read_body(request)
        decode_started = time.perf_counter()
        # The typed decoder reads a well-formed body in one step; any other body goes the
        # careful way, whose error names the row and the field.
        columns, row_form = model.inputs.decode(body) or self._columns(model, parse_body(body))
        rows = len(next(iter(columns.values())))
        self.metrics.observe(self.metrics.decode_seconds, time.perf_counter() - decode_started)
        scores = await self.score(model, columns, rows, started)
        encode_started = time.perf_counter()
        # TF Serving omits the output name when a model has one output: a plain list per form (a
        # list of per-class probabilities per row for a multiclass or multilabel model, whose class
        # names come beside it once, as "classes": docs/serving.md).
        answer = {"predictions" if row_form else "outputs": scores}
        if model.classes:
            answer["classes"] = model.classes
        response = web.Response(body=orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY),
                                content_type=JSON)
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

    async def _scores(self, model, columns, rows, started) -> np.ndarray:
        keys, missing = None, None
        if self.cache is not None:
            scores, missing, keys = self.cache.lookup(columns, len(model.classes))
            self.metrics.cache_hits.inc(rows - len(missing))
            self.metrics.cache_misses.inc(len(missing))
            if not missing:
                return scores
            if len(missing) < rows:
                columns = {name: column[missing] for name, column in columns.items()}
        todo = len(missing) if missing is not None else rows
        if todo <= LONE_ROWS and await self._alone():
            computed = self._score_here(model, columns, todo)
        else:
            future = self.batcher.submit(columns, todo, model)
            left = self.settings.timeout_s - (time.perf_counter() - started)
            try:
                async with asyncio.timeout(max(left, 0.001)):  # cheaper than wait_for: no extra task
                    computed = await asyncio.wrap_future(future)
            except asyncio.TimeoutError:
                future.cancel()  # the batcher skips it if it has not started
                raise
        if self.cache is None:
            return computed
        if model is self.model:  # a score from a model swapped out meanwhile is not cached
            self.cache.store([keys[i] for i in missing], computed)
        scores[missing] = computed
        return scores

    # --- what every protocol's handlers share (the REST API above, oip_http, grpc_calls) ------------
    def model_named(self, name: str, version: str | None = None, listing: str = ""):
        """The served model, when a request names it (and, if it names one, its version); else
        Refused: 503 while loading, 404 for another model or version. listing: the path under
        which the protocol describes a model, for the message (e.g. /v1/models)."""
        # While draining, requests that still arrive on open connections are answered.
        if self.batcher is None:
            raise Refused(503, "not ready (loading the model); retry shortly", self.settings.retry_after_s)
        model = self.model
        if name != model.name:
            where = f" (GET {listing}/{model.name})" if listing else ""
            raise Refused(404, f"model {name!r} is not served here; this server serves {model.name!r}{where}")
        if version is not None and version != model.version:
            raise Refused(404, f"model {name!r} has no version {version!r} here: it is served in version "
                               f"{model.version!r} only (its training run id); leave the version out, or ask "
                               f"for that one")
        return model

    async def score(self, model, columns: dict, rows: int, started: float) -> np.ndarray:
        """The scores, the REST API's way through the cache, the batcher, the queue and the timeout,
        counted in the same metrics; Refused 503 when overloaded, 504 when too slow."""
        try:
            return await self._scores(model, columns, rows, started)
        except QueueFull as error:
            self.metrics.rejected_requests.inc()
            raise Refused(503, f"overloaded: {error}; retry after {self.settings.retry_after_s} s",
                          self.settings.retry_after_s) from None
        except asyncio.TimeoutError:
            self.metrics.timed_out_requests.inc()
            raise Refused(504, f"no answer within {self.settings.timeout_s} s (--timeout); send fewer rows "
                               f"per request or retry later") from None

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

    async def admin_model(self, request):
        """Swap in another model zip: load and warm it beside the current one, then switch."""
        token = self.settings.admin_token
        if not token:
            return json_error(403, "the admin endpoint is off; start fab serve with --admin-token "
                               "(or NETFAB_ADMIN_TOKEN) to swap models over HTTP")
        if request.headers.get("Authorization") != f"Bearer {token}":
            return json_error(401, "send the admin token as 'Authorization: Bearer <token>'")
        if not self.ready:
            return json_error(503, "not ready; swap models once /readyz answers 200")
        payload = parse_body(await self.read_body(request))
        uri = payload.get("model") if isinstance(payload, dict) else None
        if not isinstance(uri, str) or not uri:
            return json_error(400, 'send {"model": "URI of a model zip"}')
        previous = self.model.describe()
        try:
            await self._swap(uri)
        except NetfabError as error:
            problem = str(error) if uri in str(error) else f"could not load {uri}: {error}"
            return json_error(400, f"{problem}; still serving {self.model.name} version {self.model.version}")
        answer = {"model": self.model.describe(), "previous": previous}
        if self.group is not None:
            self.generation = self.group.want_model(uri)
            failed = await self._wait_for_workers(self.generation)
            answer["workers"] = self.group.count
            if failed:
                return json_error(500, f"worker(s) could not load {uri} and still serve the previous model: "
                                   f"{'; '.join(failed)}; POST a model that loads to bring them in line")
        return json_response(answer)

    async def _swap(self, uri: str) -> None:
        """Load and warm `uri` beside the current model, then send later requests to it."""
        async with self._swap_lock:
            new = await asyncio.get_running_loop().run_in_executor(None, self._load_and_warm, uri)
            old = self.batcher.swap(new)
            self.model = new
            if self.cache is not None:
                self.cache.clear()
            # Requests still queued hold the old model; it is released when the last one finishes.
            log.info("swapped model: %s -> %s", old.version, new.version)
            del old
            gc.collect()  # frees the old model if only cycles hold it: what the workers publish counts it

    # --- fab serve --workers: what the other workers need to know -------------------------------
    def _state(self) -> dict:
        return {"index": self.group.index, "warm": self.batcher is not None,
                "generation": self.generation, "swap_error": self.swap_error,
                # every 0.5 s: no full garbage collection each time, a latency spike for requests
                "metrics": self.metrics.as_json(collect_garbage=False) if self.batcher is not None else None}

    async def _follow_group(self) -> None:
        """Publish this worker's state, and serve the model the group wants, until cancelled."""
        while True:
            self.group.publish(self._state())
            wanted = self.group.wanted_model()
            if self.batcher is not None and wanted["generation"] > self.generation:
                self.generation = wanted["generation"]
                try:
                    await self._swap(wanted["uri"])
                    self.swap_error = None
                except NetfabError as error:
                    log.error("worker %d could not load %s: %s", self.group.index, wanted["uri"], error)
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
        try:
            await asyncio.wait([loading, stopping], return_when=asyncio.FIRST_COMPLETED)
            if loading.done():
                loading.result()  # a model that cannot load ends the process with its error
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
            loading.cancel()
            if following:
                following.cancel()
            log.info("stopped")


def serve(model_uri: str, settings: ServerSettings) -> None:
    """Serve until SIGTERM or SIGINT; both drain and return. settings.workers > 1: that many processes."""
    if settings.workers > 1:
        return run_workers(run_server, model_uri, settings)
    run_server(model_uri, settings)


def run_server(model_uri: str, settings: ServerSettings, group: WorkerGroup | None = None) -> None:
    """One server process (alone, or one worker of a group) until SIGTERM or SIGINT."""
    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await PredictionServer(model_uri, settings, group).run(stop)

    asyncio.run(main())
