"""The Open Inference Protocol v2 (KServe v2) over HTTP, on fab serve's port beside the REST API.

    GET  /v2/health/live    /v2/health/ready    /v2 (server metadata)
    GET  /v2/models/<name>[/versions/<version>]          model metadata: an input per feature
    GET  /v2/models/<name>[/versions/<version>]/ready
    POST /v2/models/<name>[/versions/<version>]/infer    JSON tensors, or binary tensors after a
                                                         JSON header (Inference-Header-Content-Length)

    import tritonclient.http as triton
    client = triton.InferenceServerClient("localhost:8501")
    price = triton.InferInput("price", [2], "FP32")
    price.set_data_from_numpy(np.array([83.2, 120.0], dtype=np.float32))     # binary by default
    ...                                                                      # one InferInput per feature
    client.infer("deep_v1", inputs).as_numpy("probability")

From the columns on, a request goes the REST API's way (PredictionServer.score: the cache, the
batcher, the queue, the timeout), so probes, the drain, metrics and model swaps cover both alike.
Errors are {"error": "..."}, the protocol's own shape, answered by the server's middleware for
an InputError (400) or a Refused (netfab.serve.refused). oip_tensors.py reads the tensors.
"""
import time

import orjson
from aiohttp import web

import netfab
from netfab.model_zip import SERVING_OUTPUT
from netfab.serve.connections import json_response
from netfab.serve.experiment import answer_headers
from netfab.serve.inputs import InputError
from netfab.serve.oip_tensors import DATATYPES, OUTPUT_DATATYPE, columns_from_inputs, output_tensor

HEADER_LENGTH = "Inference-Header-Content-Length"
JSON, BINARY = "application/json", "application/octet-stream"
EXTENSIONS = ["binary_tensor_data"]


class OpenInferenceHttp:
    """The /v2 endpoints of one PredictionServer (netfab.serve.app)."""

    def __init__(self, server):
        self.server = server

    def routes(self) -> list:
        model = r"/v2/models/{name:[^/]+}"
        version = model + r"/versions/{version:[^/]+}"
        return [web.get("/v2", self.server_metadata),
                web.get("/v2/health/live", self.live),
                web.get("/v2/health/ready", self.ready),
                *(route for path in (model, version) for route in (
                    web.get(path, self.model_metadata),
                    web.get(path + "/ready", self.model_ready),
                    web.post(path + "/infer", self.infer)))]

    # --- server ---------------------------------------------------------------------------------
    async def server_metadata(self, request):
        return json_response({"name": "netfab", "version": netfab.__version__, "extensions": EXTENSIONS})

    async def live(self, request):
        return json_response({"live": True})

    async def ready(self, request):
        """Ready as /readyz is: the model warm (every worker's), not draining."""
        if self.server.ready:
            return json_response({"ready": True})
        return json_response({"ready": False, "error": self.server.not_ready_reason()}, 503)

    # --- model ----------------------------------------------------------------------------------
    def _served_model(self, request):
        """The model (and version) named in the path; Refused otherwise (the middleware answers it)."""
        return self.server.model_named(request.match_info["name"], request.match_info.get("version"),
                                       listing="/v2/models", headers=request.headers)

    async def model_metadata(self, request):
        model = self._served_model(request)
        return json_response({
            "name": model.name, "versions": [model.version], "platform": "tensorflow_savedmodel",
            "inputs": [{"name": name, "datatype": DATATYPES[kind], "shape": [-1]}
                       for name, kind in model.inputs.features.items()],
            "outputs": [{"name": model.output, "datatype": OUTPUT_DATATYPE,
                         "shape": [-1, len(model.classes)] if model.classes else [-1]}],
            **({"parameters": {"classes": model.classes}} if model.classes else {})})

    async def model_ready(self, request):
        model = self._served_model(request)
        if self.server.ready:
            return json_response({"name": model.name, "ready": True})
        return json_response({"name": model.name, "ready": False, "error": self.server.not_ready_reason()}, 503)

    # --- inference ------------------------------------------------------------------------------
    async def infer(self, request):
        started = time.perf_counter()
        model = self._served_model(request)
        server = self.server
        body = await server.read_body(request)
        decode_started = time.perf_counter()
        binary_start = _binary_start(request, body)
        payload = _header(body if binary_start is None else body[:binary_start])
        binary_output = _binary_output(payload, model.output)
        columns, rows = columns_from_inputs(model.inputs, payload.get("inputs"), body, binary_start)
        server.metrics.observe(server.metrics.decode_seconds, time.perf_counter() - decode_started)
        scores = await server.score(model, columns, rows, started)
        encode_started = time.perf_counter()
        output, data = output_tensor(model.output, scores, binary_output)
        answer = {"model_name": model.name, "model_version": model.version, "outputs": [output]}
        if "id" in payload:
            answer["id"] = payload["id"]
        arm_headers = answer_headers(model)
        if arm_headers:  # an experiment's endpoint: the protocol's own place for more, and the header
            answer["parameters"] = {"arms": model.arms}
        header = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
        if data:
            response = web.Response(body=header + data, content_type=BINARY,
                                    headers={HEADER_LENGTH: str(len(header)), **(arm_headers or {})})
        else:
            response = web.Response(body=header, content_type=JSON, headers=arm_headers)
        server.record_answer(rows, started, encode_started)
        return response


def _binary_start(request, body: bytes) -> int | None:
    """Where the binary tensors begin: the JSON header's length; None for a body that is all JSON."""
    raw = request.headers.get(HEADER_LENGTH)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise InputError(f"{HEADER_LENGTH} must be the JSON header's length in bytes, got {raw!r:.40}")
    length = int(raw)
    if length == 0:  # the extension's "raw binary request", defined for models of one input
        raise InputError(f"{HEADER_LENGTH}: 0 (a body of raw tensor bytes, no JSON header) suits models of "
                         f"one input; this one takes one per feature: send the JSON header first")
    if length > len(body):
        raise InputError(f"{HEADER_LENGTH} is {length}, but the body is only {len(body)} bytes; give the "
                         f"length of the JSON header that starts the body")
    return length


def _header(data: bytes) -> dict:
    if not data.strip():
        raise InputError('empty request body; send a JSON object with "inputs": a tensor per feature')
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        hint = "; NaN and Infinity are not JSON: send null for an unknown number" if \
            b"NaN" in data or b"Infinity" in data else ""
        raise InputError(f"malformed JSON header: {error}{hint}") from None
    if not isinstance(payload, dict):
        raise InputError('the request must be a JSON object with "inputs": a tensor per feature')
    return payload


def _binary_output(payload: dict, served: str = SERVING_OUTPUT) -> bool:
    """Whether the scores go back as binary data: the output's binary_data, else the request's
    binary_data_output, else JSON (the extension's rules)."""
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InputError("parameters must be an object")
    binary = parameters.get("binary_data_output") is True
    outputs = payload.get("outputs") or []
    if not isinstance(outputs, list):
        raise InputError(f'"outputs" must be a list of requested outputs: [{{"name": "{served}"}}]')
    for output in outputs:
        name = output.get("name") if isinstance(output, dict) else None
        if name != served or len(outputs) > 1:
            raise InputError(f"output {name!r:.40} cannot be asked for: this model has one output, "
                             f"{served!r} ({OUTPUT_DATATYPE}); ask for it once, or for no output at all")
        output_parameters = output.get("parameters") or {}
        if not isinstance(output_parameters, dict):
            raise InputError(f"output {name!r}: parameters must be an object")
        if output_parameters.get("classification"):
            raise InputError(f"output {name!r}: classification is not supported; the output is one "
                             f"probability per row")
        if "binary_data" in output_parameters:
            binary = output_parameters["binary_data"] is True
    return binary
