"""TensorFlow Serving's gRPC API, `tensorflow.serving.PredictionService`: Predict and GetModelMetadata.

    # a client, with TensorFlow Serving's own stubs (pip package tensorflow-serving-api)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel("localhost:8500"))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "deep_v1"
    request.inputs["country"].CopyFrom(tf.make_tensor_proto(["DE", "FR"]))
    request.inputs["price"].CopyFrom(tf.make_tensor_proto([83.2, 120.0], dtype=tf.float32))
    ...                                                   # every feature of the signature
    scores = tf.make_ndarray(stub.Predict(request, timeout=10).outputs["probability"])

Each input is a rank-1 TensorProto, one value per row: DT_STRING (string_val, UTF-8) for a
string feature, DT_FLOAT (float_val or tensor_content) for a number, finite (send the training
mean for an unknown number, what REST's null stands for). Inputs the signature does not name
are ignored, as in the REST API. The answer's "probability" is DT_FLOAT [rows] in
tensor_content (tf.make_ndarray reads it); its model_spec names the version served in
version_label: it is a run id, not a number.
Classify, Regress and MultiInference (tf.Example inputs) answer UNIMPLEMENTED.
"""
import time

import numpy as np
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2

from netfab.model_zip import SERVING_SIGNATURE
from netfab.serve.grpc_calls import answered, score, served_model
from netfab.serve.inputs import NUMBER, STRING, InputError
from netfab.serve.protos.tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2
from netfab.serve.protos.tensorflow_serving.apis.prediction_service_pb2_grpc import (
    PredictionServiceServicer, add_PredictionServiceServicer_to_server)
from netfab.serve.grpc_tensors import common_length, missing_input_error, number_column, string_column

DTYPES = {STRING: types_pb2.DT_STRING, NUMBER: types_pb2.DT_FLOAT}
DTYPE_NAMES = {STRING: "DT_STRING", NUMBER: "DT_FLOAT"}
METADATA_FIELD = "signature_def"  # the one metadata field TensorFlow Serving knows


class PredictionService(PredictionServiceServicer):
    def __init__(self, server):
        self.server = server  # the PredictionServer: its model, batcher, metrics

    def add_to(self, grpc_server) -> None:
        add_PredictionServiceServicer_to_server(self, grpc_server)

    @answered
    async def Predict(self, request, context):
        started = time.perf_counter()
        model = self._model(request.model_spec)
        if request.output_filter and set(request.output_filter) != {model.output}:
            unknown = sorted(set(request.output_filter) - {model.output})
            raise InputError(f"output_filter names {', '.join(map(repr, unknown))}; the model's only "
                             f"output is {model.output!r}")
        columns = {name: _column(name, kind, request.inputs[name], model.inputs.numeric_fill)
                   for name, kind in model.inputs.features.items() if name in request.inputs}
        problem = missing_input_error(model.inputs, columns, DTYPE_NAMES)
        if problem:
            raise problem
        rows = common_length(columns)
        scores = await score(self.server, model, columns, rows, started)
        encode_started = time.perf_counter()
        response = predict_pb2.PredictResponse()
        _describe(response.model_spec, model)
        output = response.outputs[model.output]
        output.dtype = types_pb2.DT_FLOAT
        for size in scores.shape:  # [rows], or [rows, classes] for a per-class model
            output.tensor_shape.dim.add().size = size
        output.tensor_content = scores.astype("<f4", copy=False).tobytes()  # one copy, no value by value
        self.server.record_answer(rows, started, encode_started)
        return response

    @answered
    async def GetModelMetadata(self, request, context):
        model = self._model(request.model_spec)
        unknown = [field for field in request.metadata_field if field != METADATA_FIELD]
        if unknown or not request.metadata_field:
            raise InputError(f"metadata_field must be [{METADATA_FIELD!r}] (the only one served), got "
                             f"{list(request.metadata_field)}")
        signatures = get_model_metadata_pb2.SignatureDefMap()
        # the REST API's metadata, so both describe the signature in the same words
        json_format.ParseDict({"signature_def": model.inputs.signature_def(SERVING_SIGNATURE, model.output,
                                                                           len(model.classes))},
                              signatures)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _describe(response.model_spec, model)
        response.metadata[METADATA_FIELD].Pack(signatures)
        return response

    def _model(self, spec):
        """The model the request's ModelSpec names, at the version served, with its one signature."""
        version = str(spec.version.value) if spec.HasField("version") else spec.version_label
        model = served_model(self.server, spec.name, version)
        if spec.signature_name not in ("", SERVING_SIGNATURE):
            raise InputError(f"signature_name {spec.signature_name!r} is unknown; this model has only "
                             f"{SERVING_SIGNATURE!r}")
        return model


def _describe(spec, model) -> None:
    spec.name = model.name
    spec.signature_name = SERVING_SIGNATURE
    spec.version_label = model.version


def _column(name: str, kind: str, tensor, numeric_fill: dict) -> np.ndarray:
    """One input TensorProto as a checked column; an InputError names the input."""
    if tensor.dtype != DTYPES[kind]:
        got = types_pb2.DataType.Name(tensor.dtype) if tensor.dtype in types_pb2.DataType.values() else tensor.dtype
        raise InputError(f"input {name!r}: expected {DTYPE_NAMES[kind]}, got {got}; the model takes {name!r} as "
                         f"{'strings' if kind == STRING else 'float32 numbers'}")
    dims = [dim.size for dim in tensor.tensor_shape.dim]
    if len(dims) != 1 or dims[0] < 1:
        raise InputError(f"input {name!r}: shape {dims}; send one value per row, shape [rows], rows at least 1")
    rows = dims[0]
    if kind == STRING:
        values = tensor.string_val
    elif tensor.tensor_content:
        if len(tensor.tensor_content) % 4:
            raise InputError(f"input {name!r}: tensor_content of {len(tensor.tensor_content)} bytes is not "
                             f"whole float32 values")
        values = np.frombuffer(tensor.tensor_content, dtype="<f4")  # host order, as TensorFlow writes it
    else:
        values = np.array(tensor.float_val, dtype=np.float32)
    if len(values) != rows:
        raise InputError(f"input {name!r}: shape [{rows}] but {len(values)} values")
    if kind == STRING:
        return string_column(name, values)
    return number_column(name, values, numeric_fill[name])

