"""The Open Inference Protocol v2 over real HTTP on loopback, spoken by the official client
(tritonclient.http): metadata, readiness, JSON and binary tensors both ways, the REST API's
scores for the same rows, and the error paths in the protocol's own shape."""
import http.client
import json
import signal
import time

import numpy as np
import orjson
import pytest

from netfab import model_zip
from tests.helpers import fixture_rows
from tests.serve.helpers import ServerProcess, call

triton = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

MODEL = "deep_v1"
PREDICT = f"/v1/models/{MODEL}:predict"


@pytest.fixture(scope="module")
def server(trained_zip, tmp_path_factory):
    log = tmp_path_factory.mktemp("oip") / "serve.log"
    with ServerProcess(trained_zip, "--cache-rows=5000", log_path=log) as process:
        yield process


@pytest.fixture(scope="module")
def client(server):
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def means(trained_zip) -> dict:
    """The training means: what REST fills a null number with, and what an OIP client sends instead."""
    numeric = model_zip.ModelZip(trained_zip).json("dataset_metadata.json")["numeric"]
    return {name: stats["mean"] for name, stats in numeric.items()}


def triton_inputs(client, rows, means, binary=True) -> list:
    """One InferInput per feature of the model's metadata; nulls as REST reads them ("", the mean)."""
    inputs = []
    for tensor in client.get_model_metadata(MODEL)["inputs"]:
        name, datatype = tensor["name"], tensor["datatype"]
        if datatype == "BYTES":
            values = np.array(["" if row[name] is None else row[name] for row in rows], dtype=object)
        else:
            values = np.array([means[name] if row[name] is None else row[name] for row in rows], dtype=np.float32)
        inputs.append(triton.InferInput(name, [len(rows)], datatype).set_data_from_numpy(values, binary_data=binary))
    return inputs


def rest_scores(port, rows) -> np.ndarray:
    reply = call(port, "POST", PREDICT, {"instances": rows})
    assert reply.status == 200, reply.body
    return np.array(reply.body["predictions"], dtype=np.float32)


def fresh_rows(count, offset) -> list:
    """Fixture rows no other test sends (the server's cache would answer them otherwise), moved
    by a few metres only: scores spread between 0 and 1, which a wrong value would change (a
    distance of `offset` km put every score within 1e-7 of 0, where any input scores alike)."""
    return [dict(row, distance_km=row["distance_km"] + offset / 1000) for row in fixture_rows(count)]


# --- metadata and readiness -------------------------------------------------------------------------
def test_server_and_model_metadata_describe_each_feature(server, client, trained_zip):
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    assert "/v2/models/{name}/infer" in call(server.port, "GET", "/openapi.json").body["paths"]
    metadata = client.get_model_metadata(MODEL)
    version = model_zip.ModelZip(trained_zip).json("config.json")["run_id"]
    assert metadata["name"] == MODEL and metadata["versions"] == [version]
    inputs = {tensor["name"]: tensor for tensor in metadata["inputs"]}
    assert inputs["country"] == {"name": "country", "datatype": "BYTES", "shape": [-1]}
    assert inputs["price"] == {"name": "price", "datatype": "FP32", "shape": [-1]}
    assert len(inputs) == 12 and "booked" not in inputs
    assert metadata["outputs"] == [{"name": "probability", "datatype": "FP32", "shape": [-1]}]
    assert client.get_model_metadata(MODEL, model_version=version)["name"] == MODEL


def test_live_and_ready_and_an_unknown_model_is_not(client, trained_zip):
    version = model_zip.ModelZip(trained_zip).json("config.json")["run_id"]
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, model_version=version)
    assert not client.is_model_ready("rnn_v9") and not client.is_model_ready(MODEL, model_version="other")


# --- inference: the same scores whichever way the tensors travel -------------------------------------
@pytest.mark.parametrize("binary_in, binary_out", [(True, True), (True, False), (False, True), (False, False)],
                         ids=["binary", "binary-in-json-out", "json-in-binary-out", "json"])
def test_infer_answers_the_rest_apis_scores(server, client, means, binary_in, binary_out):
    rows = fresh_rows(200, offset=100 + 10 * binary_in + binary_out)  # binary strings: read as ByteSlices
    result = client.infer(MODEL, triton_inputs(client, rows, means, binary_in),
                          outputs=[triton.InferRequestedOutput("probability", binary_data=binary_out)])
    scores = result.as_numpy("probability")
    assert scores.dtype == np.float32 and scores.shape == (200,)
    assert (result.get_output("probability").get("parameters", {}).get("binary_data_size") == 800) == binary_out
    assert np.ptp(scores) > 0.1  # scores a wrong value would change
    np.testing.assert_allclose(scores, rest_scores(server.port, rows), atol=1e-6)  # REST's rows keep their nulls


def test_rows_scored_over_oip_are_cache_hits_for_rest_and_counted_in_the_metrics(server, client, means):
    rows = fresh_rows(150, offset=300)
    before = call(server.port, "GET", "/metrics?format=json").body
    scores = client.infer(MODEL, triton_inputs(client, rows, means)).as_numpy("probability")  # binary, by default
    np.testing.assert_array_equal(rest_scores(server.port, rows), scores)
    after = call(server.port, "GET", "/metrics?format=json").body
    assert after["cache_hits"] - before["cache_hits"] == 150  # the same checked values: the same cache keys
    assert after["predicted_rows"] - before["predicted_rows"] == 300
    assert after["requests"]["by_status"]["200"] - before["requests"]["by_status"].get("200", 0) >= 2


def test_a_large_columnar_rest_body_scores_as_the_model_does(server, trained_zip):
    """A REST body of 16 KB or more has its string columns read as slices of its JSON text
    (netfab.serve.json_strings): the model's own scores for the rows, compact JSON or Python's."""
    from netfab.serve.inputs import RAW_STRINGS_MIN_BYTES
    from netfab.serve.model import ServingModel

    model = ServingModel.load(trained_zip)
    for offset, dumps in ((700, json.dumps), (800, orjson.dumps)):
        rows = fresh_rows(400, offset)
        body = dumps({"inputs": {name: [row[name] for row in rows] for name in rows[0]}})
        body = body.encode() if isinstance(body, str) else body
        assert len(body) >= RAW_STRINGS_MIN_BYTES
        reply = call(server.port, "POST", PREDICT, body)
        assert reply.status == 200, reply.body
        expected = model.predict(model.inputs.columns_from_rows(rows))
        assert np.ptp(expected) > 0.1  # scores a wrong string would change
        np.testing.assert_allclose(np.array(reply.body["outputs"], dtype=np.float32), expected, atol=1e-6)


def test_infer_on_the_served_version_and_with_an_id(client, means, trained_zip):
    version = model_zip.ModelZip(trained_zip).json("config.json")["run_id"]
    rows = fresh_rows(3, offset=400)
    result = client.infer(MODEL, triton_inputs(client, rows, means), model_version=version, request_id="r-1")
    answer = result.get_response()
    assert answer["id"] == "r-1" and answer["model_name"] == MODEL and answer["model_version"] == version
    assert result.as_numpy("probability").shape == (3,)


def test_a_gzip_compressed_request_is_read(client, means):
    rows = fresh_rows(130, offset=450)
    plain = client.infer(MODEL, triton_inputs(client, rows, means)).as_numpy("probability")
    compressed = client.infer(MODEL, triton_inputs(client, rows, means), request_compression_algorithm="gzip",
                              response_compression_algorithm="gzip")  # the answer comes uncompressed
    np.testing.assert_array_equal(compressed.as_numpy("probability"), plain)


def test_json_data_takes_null_as_rest_does(server):
    rows = fresh_rows(4, offset=500)
    rows[1].update(rating=None, device=None)
    metadata = call(server.port, "GET", f"/v2/models/{MODEL}").body
    body = {"inputs": [{"name": t["name"], "datatype": t["datatype"], "shape": [4],
                        "data": [row[t["name"]] for row in rows]} for t in metadata["inputs"]]}
    reply = call(server.port, "POST", f"/v2/models/{MODEL}/infer", body)
    assert reply.status == 200, reply.body
    output = reply.body["outputs"][0]
    assert output["name"] == "probability" and output["shape"] == [4]
    np.testing.assert_allclose(output["data"], rest_scores(server.port, rows), atol=1e-6)


# --- errors: the protocol's {"error": ...}, raised by the client with the message -----------------
def client_error(action) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as error:
        action()
    return error.value


def test_unknown_model_is_404_naming_the_served_one(client, means):
    error = client_error(lambda: client.infer("rnn_v9", triton_inputs(client, fixture_rows(2), means)))
    assert error.status() == "404"
    assert "model 'rnn_v9' is not served here; this server serves 'deep_v1'" in error.message()
    error = client_error(lambda: client.get_model_metadata(MODEL, model_version="v0"))
    assert error.status() == "404" and "no version 'v0'" in error.message()


def test_missing_input_is_400_naming_it(client, means):
    inputs = [i for i in triton_inputs(client, fixture_rows(2), means) if i.name() != "price"]
    error = client_error(lambda: client.infer(MODEL, inputs))
    assert error.status() == "400"
    assert error.message().startswith("missing input 'price' (FP32); the model takes country BYTES")


def test_wrong_datatype_is_400_saying_what_to_send(client, means):
    inputs = [i for i in triton_inputs(client, fixture_rows(2), means) if i.name() != "nights"]
    nights = triton.InferInput("nights", [2], "INT64").set_data_from_numpy(np.array([1, 2], dtype=np.int64))
    error = client_error(lambda: client.infer(MODEL, inputs + [nights]))
    assert error.status() == "400"
    assert error.message() == ("input 'nights': datatype 'INT64', but the model takes float32 numbers here: "
                               "send datatype FP32")


def test_binary_nan_is_400_naming_the_mean_to_send(client, means):
    rows = fixture_rows(3)
    rows[2]["price"] = float("nan")
    means = {**means, "price": float("nan")}  # the NaN goes out as it is
    error = client_error(lambda: client.infer(MODEL, triton_inputs(client, rows, means)))
    assert error.status() == "400" and "input 'price', element 2: NaN is not a value" in error.message()
    assert "training mean" in error.message()


@pytest.mark.parametrize("change, words", [
    (lambda header, body: (header.replace(b'"binary_data_size":8', b'"binary_data_size":9'), body),
     ["add up to"]),
    (lambda header, body: (header, body + b"\x00\x00\x00\x00"), ["the binary data after the JSON header is"]),
    (lambda header, body: (header.replace(b'"shape":[2]', b'"shape":[3]', 1), body), ["inputs differ in shape"]),
], ids=["sizes-do-not-add-up", "extra-bytes", "shape-differs"])
def test_malformed_binary_requests_are_400(server, client, means, change, words):
    from tritonclient.http._utils import _get_inference_request

    body, header_length = _get_inference_request(triton_inputs(client, fixture_rows(2), means), "", None,
                                                 0, False, False, 0, None, None)
    header, data = change(body[:header_length], body[header_length:])
    reply = call(server.port, "POST", f"/v2/models/{MODEL}/infer", header + data,
                 headers={"Inference-Header-Content-Length": str(len(header))})
    assert reply.status == 400 and all(word in reply.body["error"] for word in words), reply.body


@pytest.mark.parametrize("body, headers, words", [
    (b"", {}, ["empty request body"]),
    (b'{"inputs": [', {}, ["malformed JSON header"]),
    (b'{"inputs": []}', {"Inference-Header-Content-Length": "x"}, ["must be the JSON header's length"]),
    (b'{"inputs": []}', {"Inference-Header-Content-Length": "99"}, ["the body is only 14 bytes"]),
    (b'{"inputs": []}', {"Inference-Header-Content-Length": "0"}, ["one input"]),
    (b'{"inputs": [], "outputs": [{"name": "score"}]}', {}, ["output 'score'", "'probability'"]),
], ids=["empty", "malformed", "header-length-not-a-number", "header-length-too-long", "raw-binary",
        "unknown-output"])
def test_malformed_requests_are_400_in_oip_shape(server, body, headers, words):
    reply = call(server.port, "POST", f"/v2/models/{MODEL}/infer", body, headers=headers)
    assert reply.status == 400 and list(reply.body) == ["error"], reply.body
    assert all(word in reply.body["error"] for word in words), reply.body


# --- readiness while loading and draining ------------------------------------------------------------
def test_ready_only_once_warm_and_not_while_draining(trained_zip, tmp_path):
    process = ServerProcess(trained_zip, log_path=tmp_path / "serve.log")
    try:
        seen = []
        deadline = time.monotonic() + 180
        while not seen or seen[-1][0] != 200:
            assert time.monotonic() < deadline and process.process.poll() is None, process.log_tail()
            try:
                reply = call(process.port, "GET", "/v2/health/ready", timeout=5)
                seen.append((reply.status, reply.body))
            except OSError:  # not listening yet
                pass
            time.sleep(0.2)
        assert seen[0][0] == 503 and "loading" in seen[0][1]["error"], seen[0]
        keep_alive = http.client.HTTPConnection("127.0.0.1", process.port, timeout=10)
        keep_alive.request("GET", f"/v2/models/{MODEL}/ready")
        assert keep_alive.getresponse().read() and True
        process.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # within the drain's grace for a kept-alive connection
        keep_alive.request("GET", "/v2/health/ready")
        reply = keep_alive.getresponse()
        assert reply.status == 503 and orjson.loads(reply.read())["error"] == "draining after SIGTERM"
        keep_alive.close()
        assert process.process.wait(60) == 0
    finally:
        process.stop()
