"""The Open Inference Protocol v2 over gRPC (KServe v2, Triton's `inference.GRPCInferenceService`).

    # a client, with Triton's (pip package tritonclient[grpc])
    client = tritonclient.grpc.InferenceServerClient("localhost:8500")
    country = tritonclient.grpc.InferInput("country", [2], "BYTES")
    country.set_data_from_numpy(np.array([b"DE", b"FR"], dtype=object))
    ...                                                   # every feature: BYTES or FP32, shape [rows]
    scores = client.infer("deep_v1", inputs).as_numpy("probability")

ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer. Inputs are
rank-1 tensors, BYTES (UTF-8) for a string feature and FP32 for a number (no NaN: send the
training mean for an unknown number), in `contents` or all in `raw_input_contents`, whose BYTES
are read as OIP over HTTP reads its binary ones (netfab.serve.oip_tensors). The answer's "probability"
is FP32 [rows] in raw_output_contents, as Triton answers. The model's version is its run id.
"""
import time

import numpy as np

import netfab
from netfab.serve.grpc_calls import GRPC_CODE, answered, score, served_model
from netfab.serve.inputs import NUMBER, STRING, InputError
from netfab.serve.refused import Refused
from netfab.serve.protos import open_inference_grpc_pb2 as oip
from netfab.serve.protos.open_inference_grpc_pb2_grpc import (
    GRPCInferenceServiceServicer, add_GRPCInferenceServiceServicer_to_server)
from netfab.serve.grpc_tensors import common_length, missing_input_error, number_column, string_column
from netfab.serve.oip_tensors import binary_column

DATATYPES = {STRING: "BYTES", NUMBER: "FP32"}


class InferenceService(GRPCInferenceServiceServicer):
    def __init__(self, server):
        self.server = server  # the PredictionServer: its model, batcher, metrics

    def add_to(self, grpc_server) -> None:
        add_GRPCInferenceServiceServicer_to_server(self, grpc_server)

    # --- health, as /healthz and /readyz -------------------------------------------------------
    async def ServerLive(self, request, context):
        return oip.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return oip.ServerReadyResponse(ready=self.server.ready)

    async def ModelReady(self, request, context):
        """/readyz for one model (a probe: not counted as a request)."""
        if self.server.batcher is None:  # loading: no name to compare with yet
            return oip.ModelReadyResponse(ready=False)
        try:
            self._model(request.name, request.version)
        except Refused as refused:
            await context.abort(GRPC_CODE[refused.status], refused.message)
        return oip.ModelReadyResponse(ready=self.server.ready)

    async def ServerMetadata(self, request, context):
        return oip.ServerMetadataResponse(name="netfab", version=netfab.__version__)

    # --- the model ----------------------------------------------------------------------------
    @answered
    async def ModelMetadata(self, request, context):
        model = self._model(request.name, request.version)
        tensor = oip.ModelMetadataResponse.TensorMetadata
        return oip.ModelMetadataResponse(
            name=model.name, versions=[model.version], platform="tensorflow_savedmodel",
            inputs=[tensor(name=name, datatype=DATATYPES[kind], shape=[-1])
                    for name, kind in model.inputs.features.items()],
            outputs=[tensor(name=model.output, datatype="FP32",
                            shape=[-1, len(model.classes)] if model.classes else [-1])])

    @answered
    async def ModelInfer(self, request, context):
        started = time.perf_counter()
        model = self._model(request.model_name, request.model_version)
        unknown = sorted({output.name for output in request.outputs} - {model.output})
        if unknown:
            raise InputError(f"requested output(s) {', '.join(map(repr, unknown))} unknown; the model's only "
                             f"output is {model.output!r}")
        columns = _columns(model, request)
        rows = common_length(columns)
        scores = await score(self.server, model, columns, rows, started)
        encode_started = time.perf_counter()
        response = oip.ModelInferResponse(
            model_name=model.name, model_version=model.version, id=request.id,
            outputs=[oip.ModelInferResponse.InferOutputTensor(name=model.output, datatype="FP32",
                                                              shape=list(scores.shape))],
            raw_output_contents=[scores.astype("<f4", copy=False).tobytes()])
        self.server.record_answer(rows, started, encode_started)
        return response

    def _model(self, name: str, version: str):
        return served_model(self.server, name, version)


def _columns(model, request) -> dict[str, np.ndarray]:
    """The request's tensors as checked columns; inputs the model does not take are ignored."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InputError(f"raw_input_contents holds {len(raw)} buffers for {len(request.inputs)} inputs; "
                         f"send every input's data there, in the order of the inputs, or none")
    features, columns = model.inputs.features, {}
    for index, tensor in enumerate(request.inputs):
        kind = features.get(tensor.name)
        if kind is None:
            continue
        name = tensor.name
        if tensor.datatype != DATATYPES[kind]:
            raise InputError(f"input {name!r}: expected datatype {DATATYPES[kind]}, got {tensor.datatype!r}; "
                             f"the model takes {name!r} as {'strings' if kind == STRING else 'float32 numbers'}")
        if len(tensor.shape) != 1 or tensor.shape[0] < 1:
            raise InputError(f"input {name!r}: shape {list(tensor.shape)}; send one value per row, shape [rows], "
                             f"rows at least 1")
        rows = tensor.shape[0]
        if raw and kind == STRING:  # read as OIP over HTTP reads its binary BYTES: in numpy, no str per value
            columns[name] = binary_column(model.inputs, name, raw[index], 0, len(raw[index]), rows)
            continue
        if kind == STRING:
            values = tensor.contents.bytes_contents
        elif raw:
            if len(raw[index]) != 4 * rows:
                raise InputError(f"input {name!r}: {len(raw[index])} raw bytes, but shape [{rows}] of FP32 takes "
                                 f"{4 * rows} (4 bytes, little-endian float32, per element)")
            values = np.frombuffer(raw[index], dtype="<f4")
        else:
            values = np.array(tensor.contents.fp32_contents, dtype=np.float32)
        if len(values) != rows:
            raise InputError(f"input {name!r}: shape [{rows}] but {len(values)} values")
        columns[name] = (string_column(name, values) if kind == STRING
                         else number_column(name, values, model.inputs.numeric_fill[name]))
    problem = missing_input_error(model.inputs, columns, DATATYPES)
    if problem:
        raise problem
    return columns
