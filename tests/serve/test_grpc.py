"""`fab serve --grpc-port` over real gRPC on loopback, with the official clients: TensorFlow Serving's
stubs (tensorflow-serving-api) and Triton's (tritonclient.grpc). The same rows give the REST API's
scores; errors come in gRPC's own statuses; --workers share the gRPC port and SIGTERM drains it.
"""
import re
import signal
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from google.protobuf import json_format
from tritonclient.grpc import service_pb2 as triton_messages
from tritonclient.grpc import service_pb2_grpc as triton_services
from tritonclient.utils import InferenceServerException

from netfab import model_zip
from tests.helpers import fixture_rows, run_fab
from tests.serve.helpers import ServerProcess, call, free_port

# TensorFlow Serving's official stubs, from their PyPI wheel: as a requirement the package pulls
# the full tensorflow beside tensorflow-cpu (tests/serve/clients/README.md).
sys.path.insert(0, str(next((Path(__file__).parent / "clients").glob("tensorflow_serving_api-*.whl"))))
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc  # noqa: E402

PREDICT = "/v1/models/deep_v1:predict"


@pytest.fixture(scope="module")
def server(trained_zip, tmp_path_factory):
    grpc_port = free_port()
    with ServerProcess(trained_zip, f"--grpc-port={grpc_port}", "--cache-rows=1000", "--max-body-mb=1",
                       log_path=tmp_path_factory.mktemp("serve-grpc") / "serve.log") as process:
        process.grpc_port = grpc_port
        yield process


@pytest.fixture(scope="module")
def features(server) -> dict[str, str]:
    """feature -> DT_STRING or DT_FLOAT, from the REST API's metadata."""
    signature = call(server.port, "GET", "/v1/models/deep_v1/metadata").body["metadata"]["signature_def"]
    return {name: spec["dtype"] for name, spec in signature["signature_def"]["serving_default"]["inputs"].items()}


@pytest.fixture(scope="module")
def means(trained_zip) -> dict[str, float]:
    """The training mean of each number: what a client sends for an unknown one (REST's null)."""
    with model_zip.ModelZip(trained_zip) as package:
        return {name: stats["mean"] for name, stats in package.json("dataset_metadata.json")["numeric"].items()}


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def rest_scores(server, rows) -> list[float]:
    reply = call(server.port, "POST", PREDICT, {"instances": rows})
    assert reply.status == 200, reply.body
    return reply.body["predictions"]


def column(rows, name, dtype, means):
    """A feature's values as a client sends them: a null string as "", a null number as its training mean."""
    if dtype == "DT_STRING":
        return [(row[name] or "").encode() for row in rows]
    return np.array([means[name] if row[name] is None else row[name] for row in rows], dtype=np.float32)


def predict_request(rows, features, means, floats_as="tensor_content", name="deep_v1"):
    """A PredictRequest as TensorFlow Serving's clients build it (tf.make_tensor_proto: tensor_content for
    numbers), or with the numbers in float_val."""
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for feature, dtype in features.items():
        values = column(rows, feature, dtype, means)
        if dtype == "DT_FLOAT" and floats_as == "float_val":
            tensor = request.inputs[feature]
            tensor.dtype = tf.float32.as_datatype_enum
            tensor.tensor_shape.dim.add().size = len(rows)
            tensor.float_val.extend(values.tolist())
        else:
            request.inputs[feature].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string if dtype == "DT_STRING"
                                                                  else tf.float32))
    return request


def refusal(call_rpc) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call_rpc()
    return caught.value


# --- TensorFlow Serving's PredictionService ----------------------------------------------------------
@pytest.mark.parametrize("floats_as", ["tensor_content", "float_val"])
def test_predict_gives_the_rest_apis_scores(server, stub, features, floats_as, means):
    import tensorflow as tf

    rows = fixture_rows(40)
    response = stub.Predict(predict_request(rows, features, means, floats_as), timeout=30)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["probability"]), rest_scores(server, rows),
                               atol=1e-6)
    version = call(server.port, "GET", "/v1/models/deep_v1").body["model_version_status"][0]["version"]
    assert (response.model_spec.name, response.model_spec.version_label) == ("deep_v1", version)
    assert response.model_spec.signature_name == "serving_default"


def test_a_row_with_a_null_scores_alike_with_the_training_mean_sent_and_nan_is_refused(server, stub, features,
                                                                                        means):
    import tensorflow as tf

    rows = fixture_rows(3)
    number = next(name for name, dtype in features.items() if dtype == "DT_FLOAT")
    rows[1][number] = None  # REST fills in the training mean; a tensor has no null, so the client sends it
    response = stub.Predict(predict_request(rows, features, means), timeout=30)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["probability"]), rest_scores(server, rows),
                               atol=1e-6)
    request = predict_request(rows, features, means)
    request.inputs[number].CopyFrom(tf.make_tensor_proto([1.0, np.nan, 2.0], dtype=tf.float32))
    error = refusal(lambda: stub.Predict(request, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"input '{number}', element 1: NaN is not a value the model can score; "
                                      f"for an unknown number send the training mean, {means[number]!r}")


def test_get_model_metadata_shows_the_rest_apis_signature(server, stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "deep_v1"
    response = stub.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    rest = call(server.port, "GET", "/v1/models/deep_v1/metadata").body["metadata"]["signature_def"]
    assert signatures == json_format.ParseDict(rest, get_model_metadata_pb2.SignatureDefMap())
    assert signatures.signature_def["serving_default"].outputs["probability"].dtype == 1  # DT_FLOAT


def test_unknown_model_is_not_found_naming_the_served_one(stub, features, means):
    error = refusal(lambda: stub.Predict(predict_request(fixture_rows(2), features, means, name="rnn_v9"), timeout=30))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "'rnn_v9' is not served here; this server serves 'deep_v1'" in error.details()
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "rnn_v9"
    assert refusal(lambda: stub.GetModelMetadata(request, timeout=30)).code() == grpc.StatusCode.NOT_FOUND


def test_an_unknown_version_is_not_found(stub, features, means):
    request = predict_request(fixture_rows(2), features, means)
    request.model_spec.version.value = 3
    error = refusal(lambda: stub.Predict(request, timeout=30))
    assert error.code() == grpc.StatusCode.NOT_FOUND and "served in version" in error.details()


def test_missing_input_is_invalid_argument_naming_it(stub, features, means):
    request = predict_request(fixture_rows(2), features, means)
    missing = sorted(features)[0]
    del request.inputs[missing]
    error = refusal(lambda: stub.Predict(request, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"missing input(s) '{missing}'; the model takes")


def test_wrong_dtype_is_invalid_argument_naming_the_input(stub, features, means):
    import tensorflow as tf

    request = predict_request(fixture_rows(2), features, means)
    number = next(name for name, dtype in features.items() if dtype == "DT_FLOAT")
    request.inputs[number].CopyFrom(tf.make_tensor_proto([1.0, 2.0], dtype=tf.float64))
    error = refusal(lambda: stub.Predict(request, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"input '{number}': expected DT_FLOAT, got DT_DOUBLE")


def _not_utf8(request, string, number):
    request.inputs[string].string_val[0] = b"\xff\xfe"


def _infinite(request, string, number):
    request.inputs[number].float_val[:] = [float("inf"), 1.0]


def _too_many_values(request, string, number):
    request.inputs[string].string_val.append(b"DE")


def _two_dimensions(request, string, number):
    request.inputs[string].tensor_shape.dim.add().size = 1


def _other_signature(request, string, number):
    request.model_spec.signature_name = "classify"


def _other_output(request, string, number):
    request.output_filter.append("logits")


@pytest.mark.parametrize("change, words", [
    (_not_utf8, "element 0: not UTF-8 text; send strings encoded as UTF-8"),
    (_infinite, "element 0: inf is not a finite float32 number"),
    (_too_many_values, "shape [2] but 3 values"),
    (_two_dimensions, "shape [2, 1]; send one value per row, shape [rows]"),
    (_other_signature, "signature_name 'classify' is unknown; this model has only 'serving_default'"),
    (_other_output, "output_filter names 'logits'; the model's only output is 'probability'"),
])
def test_bad_tensors_are_invalid_argument_saying_what_to_send(stub, features, change, words, means):
    request = predict_request(fixture_rows(2), features, means, floats_as="float_val")
    string = next(name for name, dtype in features.items() if dtype == "DT_STRING")
    number = next(name for name, dtype in features.items() if dtype == "DT_FLOAT")
    change(request, string, number)
    error = refusal(lambda: stub.Predict(request, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and words in error.details(), error.details()


def test_a_message_over_max_body_mb_is_refused_by_grpc(stub, features, means):
    request = predict_request(fixture_rows(1), features, means)
    string = next(name for name, dtype in features.items() if dtype == "DT_STRING")
    request.inputs[string].string_val[0] = b"x" * (2 * 2**20)  # --max-body-mb=1
    assert refusal(lambda: stub.Predict(request, timeout=30)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_grpc_calls_count_in_the_metrics_and_use_the_cache(server, stub, features, means):
    rows = fixture_rows(60)[50:]
    before = call(server.port, "GET", "/metrics?format=json").body
    stub.Predict(predict_request(rows, features, means), timeout=30)
    stub.Predict(predict_request(rows, features, means), timeout=30)  # the same rows again: from the cache
    refusal(lambda: stub.Predict(predict_request(rows, features, means, name="rnn_v9"), timeout=30))
    after = call(server.port, "GET", "/metrics?format=json").body
    by_status = {code: after["requests"]["by_status"].get(code, 0) - before["requests"]["by_status"].get(code, 0)
                 for code in ("200", "404")}
    assert by_status == {"200": 2, "404": 1}
    assert after["cache_hits"] - before["cache_hits"] == len(rows)


# --- the Open Inference Protocol v2 (tritonclient.grpc) --------------------------------------------------
@pytest.fixture(scope="module")
def triton_client(server):
    client = triton.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    yield client
    client.close()


def triton_inputs(rows, features, means):
    """InferInputs as Triton's client sends them: raw_input_contents, BYTES and FP32."""
    inputs = []
    for name, dtype in features.items():
        values = column(rows, name, dtype, means)
        tensor = triton.InferInput(name, [len(rows)], "BYTES" if dtype == "DT_STRING" else "FP32")
        tensor.set_data_from_numpy(np.array(values, dtype=object) if dtype == "DT_STRING" else values)
        inputs.append(tensor)
    return inputs


def test_oip_model_infer_gives_the_rest_apis_scores(server, triton_client, features, means):
    rows = fixture_rows(40)
    result = triton_client.infer("deep_v1", triton_inputs(rows, features, means), request_id="r1")
    np.testing.assert_allclose(result.as_numpy("probability"), rest_scores(server, rows), atol=1e-6)
    assert result.get_response().id == "r1"


def test_oip_model_infer_reads_tensors_in_contents_too(server, features, means):
    """Not raw_input_contents: each tensor's values in its `contents`, sent with Triton's own messages."""
    rows = fixture_rows(20)
    request = triton_messages.ModelInferRequest(model_name="deep_v1")
    for name, dtype in features.items():
        tensor = request.inputs.add(name=name, datatype="BYTES" if dtype == "DT_STRING" else "FP32", shape=[len(rows)])
        values = column(rows, name, dtype, means)
        (tensor.contents.bytes_contents if dtype == "DT_STRING" else tensor.contents.fp32_contents).extend(values)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        response = triton_services.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    scores = np.frombuffer(response.raw_output_contents[0], dtype="<f4")
    np.testing.assert_allclose(scores, rest_scores(server, rows), atol=1e-6)


def test_oip_health_and_metadata(server, triton_client, features):
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready("deep_v1")
    assert triton_refusal(lambda: triton_client.is_model_ready("rnn_v9")).status() == "StatusCode.NOT_FOUND"
    metadata = triton_client.get_model_metadata("deep_v1")
    version = call(server.port, "GET", "/v1/models/deep_v1").body["model_version_status"][0]["version"]
    assert list(metadata.versions) == [version]
    assert {i.name: (i.datatype, list(i.shape)) for i in metadata.inputs} == {
        name: ("BYTES" if dtype == "DT_STRING" else "FP32", [-1]) for name, dtype in features.items()}
    assert [(o.name, o.datatype) for o in metadata.outputs] == [("probability", "FP32")]


def triton_refusal(call_rpc) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call_rpc()
    return caught.value


def test_oip_errors_are_grpc_statuses_naming_the_input(triton_client, features, means):
    inputs = triton_inputs(fixture_rows(2), features, means)
    error = triton_refusal(lambda: triton_client.infer("rnn_v9", inputs))
    assert error.status() == "StatusCode.NOT_FOUND" and "'rnn_v9' is not served here" in error.message()
    assert triton_refusal(lambda: triton_client.get_model_metadata("rnn_v9")).status() == "StatusCode.NOT_FOUND"
    error = triton_refusal(lambda: triton_client.infer("deep_v1", inputs[1:]))
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert error.message().startswith(f"missing input(s) '{inputs[0].name()}'")
    string = next(name for name, dtype in features.items() if dtype == "DT_STRING")
    wrong = triton.InferInput(string, [2], "FP32")
    wrong.set_data_from_numpy(np.zeros(2, dtype=np.float32))
    error = triton_refusal(lambda: triton_client.infer("deep_v1", [wrong] + [i for i in inputs if i.name() != string]))
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert error.message().startswith(f"input '{string}': expected datatype BYTES, got 'FP32'")


def test_oip_reads_200_raw_rows_as_oip_over_http_does(server, triton_client, features, means):
    """From 128 rows on, raw BYTES are read in numpy (netfab.serve.oip_tensors), not value by value."""
    rows = fixture_rows(200)
    result = triton_client.infer("deep_v1", triton_inputs(rows, features, means))
    np.testing.assert_allclose(result.as_numpy("probability"), rest_scores(server, rows), atol=1e-6)


# --- the port: refused when taken, shared by --workers, drained on SIGTERM ------------------------------
def test_a_grpc_port_taken_by_another_server_is_one_error_line_not_shared(tmp_path):
    """gRPC servers share a port by default (SO_REUSEPORT): fab serve must not silently take half of one."""
    other = grpc.server(ThreadPoolExecutor(1))  # another gRPC server, with gRPC's default options
    port = other.add_insecure_port("127.0.0.1:0")
    other.start()
    try:
        # gRPC listens before the model loads, so no zip is needed to see the answer.
        result = run_fab("serve", f"--model={tmp_path / 'none.zip'}", f"--port={free_port()}",
                         f"--grpc-port={port}", timeout=300)
    finally:
        other.stop(None)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen for gRPC on 127.0.0.1:{port}: "
                                                             f"another process listens there"), result.stderr[-1000:]
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # two workers each load the model
def test_workers_share_the_grpc_port_and_sigterm_answers_calls_in_flight(trained_zip, tmp_path, features, means):
    import tensorflow as tf

    grpc_port = free_port()
    with ServerProcess(trained_zip, "--workers=2", f"--grpc-port={grpc_port}", "--max-queue-rows=500000",
                       log_path=tmp_path / "serve.log") as server:
        rows = fixture_rows(12)
        expected = rest_scores(server, rows)
        for _ in range(10):  # a new channel is a new connection, handed by the kernel to either worker
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                    predict_request(rows, features, means), timeout=30)
            np.testing.assert_allclose(tf.make_ndarray(response.outputs["probability"]), expected, atol=1e-5)
        assert server.log_tail().count("listening for gRPC") == 2

        # Calls big enough to be still in flight when SIGTERM arrives: each must be answered.
        big = predict_request(fixture_rows(2000) * 10, features, means)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            calls = [stub.Predict.future(big, timeout=60) for _ in range(12)]
            time.sleep(0.2)
            server.process.send_signal(signal.SIGTERM)
            answers = [len(tf.make_ndarray(c.result().outputs["probability"])) for c in calls]
        assert answers == [20000] * 12
        assert re.search(r"finishing [1-9]\d* request\(s\) in flight", server.log_tail()), "no call was in flight"
        assert server.process.wait(60) == 0
        assert server.log_tail().count("stopped") == 2
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", grpc_port), timeout=1).close()
