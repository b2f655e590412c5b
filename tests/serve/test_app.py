"""`fab serve` over real HTTP on loopback: both request forms, every bad input, probes, metrics,
the predictions of the SavedModel itself; overload, a model swap under load and a SIGTERM drain.
"""
import http.client
import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from data.fixture import FIXTURE_PATH
from netfab import model_zip
from tests.helpers import config_for, fixture_rows
from tests.serve.helpers import ServerProcess, call

TOKEN = "test-admin-token"
PREDICT = "/v1/models/deep_v1:predict"


@pytest.fixture(scope="module")
def server(trained_zip, tmp_path_factory):
    with ServerProcess(trained_zip, "--cache-rows=1000", "--max-body-mb=1",
                       log_path=tmp_path_factory.mktemp("serve") / "serve.log") as process:
        yield process


@pytest.fixture(scope="module")
def direct_scores(trained_zip, tmp_path_factory):
    """The SavedModel called in this process, no server in between."""
    from netfab.serve.saved_model import load_serving_function, predict_rows, training_means

    with model_zip.ModelZip(trained_zip) as package:
        function = load_serving_function(package.extract(tmp_path_factory.mktemp("direct")) / "saved_model")
        means = training_means(function, package.json("dataset_metadata.json"))  # the server's fill for a null number
    return lambda rows: predict_rows(function, rows, means)


def columnar(rows):
    return {name: [row[name] for row in rows] for name in rows[0]}


# --- the two request forms ------------------------------------------------------------------------
def test_row_form_answers_like_the_saved_model_called_directly(server, direct_scores):
    rows = fixture_rows(50)
    reply = call(server.port, "POST", PREDICT, {"instances": rows})
    assert reply.status == 200, reply.body
    np.testing.assert_allclose(reply.body["predictions"], direct_scores(rows), atol=1e-6)


def test_columnar_form_answers_outputs_in_row_order(server, direct_scores):
    rows = fixture_rows(30)[10:]
    reply = call(server.port, "POST", PREDICT, {"inputs": columnar(rows), "signature_name": "serving_default"})
    assert reply.status == 200, reply.body
    np.testing.assert_allclose(reply.body["outputs"], direct_scores(rows), atol=1e-6)


def test_unseen_categories_and_null_values_are_scored(server):
    row = dict(fixture_rows(1)[0], country="ZZ", item_id="item_never_seen", rating=None, device=None)
    reply = call(server.port, "POST", PREDICT, {"instances": [row]})
    assert reply.status == 200, reply.body
    assert 0 < reply.body["predictions"][0] < 1


def test_typed_decoding_gives_the_careful_paths_columns_and_hands_back_every_odd_body():
    """decode() is the fast way in; whatever it cannot take must reach the careful checks."""
    import orjson

    from netfab.serve.inputs import FeatureSchema

    schema = FeatureSchema({"country": "string", "title": "string", "price": "number", "rating": "number"},
                           {"price": 100.0, "rating": 4.2})
    rows = fixture_rows(40)
    rows[3].update(rating=None, country=None, price=7)  # nulls and a JSON integer
    expected = schema.columns_from_rows(rows)
    for body, row_form in ((orjson.dumps({"instances": rows}), True),
                           (orjson.dumps({"inputs": columnar(rows)}), False)):
        columns, form = schema.decode(body)
        assert form == row_form and columns.keys() == expected.keys()
        for name in expected:
            np.testing.assert_array_equal(columns[name], expected[name])
            assert columns[name].dtype == expected[name].dtype
    assert columns["rating"][3] == np.float32(4.2) and columns["country"][3] == ""
    odd = [b"", b"[]", b"{", b'{"instances": []}', b'{"instances": [1]}', b'{"rows": []}',
           b'{"instances": [{"country": "DE"}]}', b'{"instances": [{"country": 5}]}',
           b'{"inputs": {"country": ["DE"], "title": [], "price": [], "rating": []}}',
           b'{"inputs": {"country": [true]}}', b'{"instances": [{}], "inputs": {}}',
           b'{"instances": [{"price": NaN}]}', orjson.dumps({"instances": rows, "signature_name": "other"})]
    assert [schema.decode(body) for body in odd] == [None] * len(odd)


# --- bad input: status and a message naming the row and field ------------------------------------
@pytest.mark.parametrize("body, status, words", [
    (b"", 400, ["empty request body"]),
    (b'{"instances": [', 400, ["malformed JSON"]),
    ({"instances": []}, 400, ["non-empty list"]),
    ({"rows": []}, 400, ["instances", "inputs"]),
    ({"instances": "fixture"}, 400, ["non-empty list"]),
    ({"inputs": {"country": ["DE"]}}, 400, ["lacks feature", "price"]),
], ids=["empty", "malformed", "no-rows", "neither-form", "not-a-list", "columnar-missing"])
def test_malformed_bodies_get_400(server, body, status, words):
    reply = call(server.port, "POST", PREDICT, body)
    assert reply.status == status
    assert all(word in reply.body["error"] for word in words), reply.body


def test_missing_feature_names_row_and_field(server):
    rows = fixture_rows(3)
    del rows[2]["price"]
    reply = call(server.port, "POST", PREDICT, {"instances": rows})
    assert reply.status == 400
    assert reply.body["error"].startswith("row 2: missing feature 'price'"), reply.body


def test_wrong_type_names_row_and_field(server):
    rows = fixture_rows(2)
    rows[1]["nights"] = "two"
    reply = call(server.port, "POST", PREDICT, {"instances": rows})
    assert reply.status == 400
    assert "row 1, field 'nights': expected a number, got a string 'two'" in reply.body["error"]
    rows = fixture_rows(2)
    rows[0]["country"] = 4.9  # an integer or a boolean is a category (taken as sent), a fraction is not
    reply = call(server.port, "POST", PREDICT, {"inputs": columnar(rows)})
    assert reply.status == 400 and "row 0, field 'country': expected a string" in reply.body["error"]


def test_nan_names_row_and_field(server):
    rows = fixture_rows(2)
    rows[1]["rating"] = float("nan")
    body = json.dumps({"instances": rows}).encode()  # Python writes the non-standard NaN token
    assert b"NaN" in body
    reply = call(server.port, "POST", PREDICT, body)
    assert reply.status == 400
    assert reply.body["error"].startswith("row 1, field 'rating': NaN"), reply.body


def test_unknown_model_gets_404_naming_the_served_one(server):
    reply = call(server.port, "POST", "/v1/models/rnn_v9:predict", {"instances": fixture_rows(1)})
    assert reply.status == 404 and "'rnn_v9'" in reply.body["error"] and "deep_v1" in reply.body["error"]
    assert call(server.port, "GET", "/v1/models/rnn_v9").status == 404


def test_body_over_the_limit_gets_413(server):
    rows = fixture_rows() * 4  # ~1.6 MB against --max-body-mb=1
    reply = call(server.port, "POST", PREDICT, {"instances": rows})
    assert reply.status == 413 and "limit" in reply.body["error"], reply.body


# --- status, metadata, probes, metrics, docs -------------------------------------------------------
def test_readiness_is_false_until_the_model_is_warm(server):
    assert server.readiness_seen[0] == 503, server.readiness_seen
    assert server.readiness_seen[-1] == 200
    assert call(server.port, "GET", "/healthz").status == 200


def test_status_and_metadata_follow_tf_serving(server, trained_zip):
    status = call(server.port, "GET", "/v1/models/deep_v1").body["model_version_status"][0]
    assert status["state"] == "AVAILABLE"
    assert status["version"] == model_zip.ModelZip(trained_zip).json("config.json")["run_id"]
    signature = call(server.port, "GET", "/v1/models/deep_v1/metadata").body[
        "metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["price"]["dtype"] == "DT_FLOAT"
    assert signature["inputs"]["country"]["dtype"] == "DT_STRING"
    assert list(signature["outputs"]) == ["probability"]
    openapi = call(server.port, "GET", "/openapi.json").body
    assert "/v1/models/{name}:predict" in openapi["paths"]


def test_metrics_show_latency_batches_cache_and_version(server):
    rows = fixture_rows(20)
    for _ in range(2):  # the second time every row is a cache hit
        assert call(server.port, "POST", PREDICT, {"instances": rows}).status == 200
    text = call(server.port, "GET", "/metrics").body["text"]
    for name in ('netfab_request_seconds{quantile="0.99"}', 'netfab_batch_rows{quantile="0.5"}',
                 "netfab_queue_rows", "netfab_cache_hit_rate", 'netfab_model_info{name="deep_v1"',
                 'netfab_requests_total{code="200"}', "netfab_decode_seconds_count"):
        assert name in text, name
    metrics = call(server.port, "GET", "/metrics?format=json").body
    assert metrics["cache_hits"] >= 20 and 0 < metrics["cache_hit_rate"] < 1
    assert metrics["request_seconds"]["p99"] > 0


def test_large_bodies_in_either_form_answer_alike_and_share_the_cache(server, direct_scores):
    rows = [dict(row, price=300 + i / 7) for i, row in enumerate(fixture_rows(300))]  # not in the cache
    expected = direct_scores(rows)
    before = call(server.port, "GET", "/metrics?format=json").body
    reply = call(server.port, "POST", PREDICT, {"instances": rows})
    np.testing.assert_allclose(reply.body["predictions"], expected, atol=1e-5)
    reply = call(server.port, "POST", PREDICT, {"inputs": columnar(rows)})  # every row a cache hit
    np.testing.assert_allclose(reply.body["outputs"], expected, atol=1e-5)
    after = call(server.port, "GET", "/metrics?format=json").body
    assert after["cache_hits"] - before["cache_hits"] == 300  # keys alike whichever form a body came in


def test_a_lone_small_request_is_scored_in_the_event_loop_and_concurrent_ones_are_batched(server, direct_scores):
    rows = [dict(row, price=1000 + i) for i, row in enumerate(fixture_rows(12))]  # not in the cache
    before = call(server.port, "GET", "/metrics?format=json").body
    for row in rows[:8]:  # one client, one row at a time: nothing to batch with
        reply = call(server.port, "POST", PREDICT, {"instances": [row]})
        np.testing.assert_allclose(reply.body["predictions"], direct_scores([row]), atol=1e-5)
    after = call(server.port, "GET", "/metrics?format=json").body
    assert after["lone_requests"] - before["lone_requests"] == 8
    # 16 clients at once: their requests meet in the batcher (at most the first is scored alone).
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda i: call(server.port, "POST", PREDICT,
                                               {"instances": [dict(rows[i % 12], price=2000 + i)]}), range(64)))
    assert {r.status for r in replies} == {200}
    batched = call(server.port, "GET", "/metrics?format=json").body
    assert batched["lone_requests"] - after["lone_requests"] < 32
    assert batched["batch_requests"]["p99"] > 1


def test_admin_endpoint_needs_the_token(server):
    assert call(server.port, "POST", "/admin/model", {"model": "x"}).status == 403


# --- load: overload, swap under load, SIGTERM drain ------------------------------------------------
@pytest.fixture(scope="module")
def second_zip(tmp_path_factory):
    """A different model (other seed, one epoch) to swap to."""
    from netfab.train.loop import train

    return train(config_for("deep_v1", epochs=1, seed=7), str(FIXTURE_PATH),
                 str(tmp_path_factory.mktemp("second"))).zip_uri


@pytest.fixture(scope="module")
def small_queue_server(trained_zip, tmp_path_factory):
    """Shared by the three tests below, in order; the last one ends it with SIGTERM."""
    with ServerProcess(trained_zip, "--max-queue-rows=200", "--max-batch-rows=100",
                       f"--admin-token={TOKEN}", log_path=tmp_path_factory.mktemp("small") / "serve.log") as process:
        yield process


def steady_load(port, rows, stop: threading.Event, clients=4) -> list:
    """`clients` threads posting `rows` until `stop`; the statuses they got."""
    statuses, lock = [], threading.Lock()

    def client():
        while not stop.is_set():
            reply = call(port, "POST", PREDICT, {"instances": rows})
            with lock:
                statuses.append(reply.status)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return statuses, threads


def test_overload_is_answered_503_quickly_with_a_bounded_queue(small_queue_server):
    port, rows = small_queue_server.port, fixture_rows(100)
    rss_before = small_queue_server.rss_mb()
    with ThreadPoolExecutor(48) as pool:
        replies = list(pool.map(lambda _: (time.perf_counter(), call(port, "POST", PREDICT, {"instances": rows}),
                                           time.perf_counter()), range(480)))
    shed = [(end - start, r) for start, r, end in replies if r.status == 503]
    assert {r.status for _, r, _ in replies} <= {200, 503}
    assert shed, "48 concurrent clients against a 200-row queue should have been shed"
    assert all(r.headers.get("Retry-After") == "1" and "overloaded" in r.body["error"] for _, r in shed)
    assert np.median([seconds for seconds, _ in shed]) < 1.0
    metrics = call(port, "GET", "/metrics?format=json").body
    assert metrics["rejected_requests"] == len(shed)
    assert metrics["queue_rows"] == 0
    assert small_queue_server.rss_mb() - rss_before < 200, "memory climbed under overload"


def test_model_swap_under_steady_load_fails_no_request(small_queue_server, second_zip, direct_scores):
    port, rows = small_queue_server.port, fixture_rows(20)
    stop = threading.Event()
    statuses, threads = steady_load(port, rows, stop, clients=3)
    time.sleep(1)
    swap = call(port, "POST", "/admin/model", {"model": second_zip},
                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=180)
    time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join()
    assert swap.status == 200, swap.body
    assert swap.body["model"]["uri"] == second_zip
    assert statuses and set(statuses) == {200}, f"{len(statuses)} requests, statuses {set(statuses)}"
    new_scores = call(port, "POST", PREDICT, {"instances": rows}).body["predictions"]
    assert not np.allclose(new_scores, direct_scores(rows), atol=1e-4), "still the old model"
    deadline = time.monotonic() + 30
    while call(port, "GET", "/metrics?format=json").body["models_in_memory"] != 1:
        assert time.monotonic() < deadline, "the old model was never released"
        time.sleep(0.5)


def test_sigterm_drains_requests_in_flight_and_exits_0(small_queue_server):
    """A request whose body is half sent when SIGTERM arrives is in flight: it must still get 200."""
    port, body = small_queue_server.port, json.dumps({"instances": fixture_rows(100)}).encode()
    in_flight = []
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sock.sendall(f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body[:1000])
        in_flight.append(sock)
    keep_alive = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # opened before SIGTERM
    keep_alive.request("GET", "/readyz")
    assert keep_alive.getresponse().read() and True
    time.sleep(0.5)
    small_queue_server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # within the drain's grace for kept-alive connections (DRAIN_IDLE_GRACE_S)
    keep_alive.request("GET", "/readyz")  # on a connection that was already open: not ready, and closing
    reply = keep_alive.getresponse()
    assert reply.status == 503 and b"draining" in reply.read() and reply.getheader("Connection") == "close"
    keep_alive.close()
    assert not _listening(port), "still accepting connections after SIGTERM"
    statuses = []
    for sock in in_flight:
        sock.sendall(body[1000:])
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        sock.close()
        statuses.append(int(reply.split()[1]))
        assert b'"predictions"' in reply, reply[:300]
    assert statuses == [200, 200, 200]
    assert small_queue_server.process.wait(60) == 0
    assert "draining" in small_queue_server.log_tail()


def _listening(port) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_out_of_range_numbers_and_null_strings(server):
    rows = fixture_rows(3)
    rows[1]["device"] = None
    rows[2]["price"] = 1e300  # beyond float32
    reply = call(server.port, "POST", PREDICT, {"instances": rows})
    assert reply.status == 400 and reply.body["error"].startswith("row 2, field 'price': 1e+300 is not a finite")
    reply = call(server.port, "POST", PREDICT, {"instances": rows[:2]})
    assert reply.status == 200 and len(reply.body["predictions"]) == 2


# --- fab serve --workers ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workers_server(trained_zip, tmp_path_factory):
    with ServerProcess(trained_zip, "--workers=2", f"--admin-token={TOKEN}",
                       log_path=tmp_path_factory.mktemp("workers") / "serve.log") as process:
        yield process


def test_workers_share_the_port_answer_alike_and_metrics_add_up(workers_server, direct_scores):
    port, rows = workers_server.port, fixture_rows(12)
    before = call(port, "GET", "/metrics?format=json").body["requests"]["count"]
    # Each call is a new connection, which the kernel hands to either worker (SO_REUSEPORT).
    replies = [call(port, "POST", PREDICT, {"instances": rows}) for _ in range(40)]
    assert {r.status for r in replies} == {200}
    for reply in replies:
        np.testing.assert_allclose(reply.body["predictions"], direct_scores(rows), atol=1e-5)
    time.sleep(3 * 0.5)  # the other worker publishes its metrics every 0.5 s
    metrics = call(port, "GET", "/metrics?format=json").body
    assert metrics["workers"] == 2
    assert metrics["requests"]["count"] - before == 40
    assert all(count > 0 for count in metrics["requests_by_worker"]), metrics["requests_by_worker"]
    assert "netfab_workers 2" in call(port, "GET", "/metrics").body["text"]


def test_workers_all_take_a_swapped_model_and_sigterm_ends_them_all(workers_server, second_zip, direct_scores):
    port, rows = workers_server.port, fixture_rows(12)
    swap = call(port, "POST", "/admin/model", {"model": second_zip},
                headers={"Authorization": f"Bearer {TOKEN}"}, timeout=180)
    assert swap.status == 200, swap.body
    assert swap.body["workers"] == 2 and swap.body["model"]["uri"] == second_zip
    old = direct_scores(rows)
    for _ in range(20):  # fresh connections reach both workers: none still on the old model
        reply = call(port, "POST", PREDICT, {"instances": rows})
        assert reply.status == 200 and not np.allclose(reply.body["predictions"], old, atol=1e-4)
    bad = call(port, "POST", "/admin/model", {"model": "/no/such/model.zip"},
               headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert bad.status == 400 and "still serving" in bad.body["error"]
    assert workers_server.stop() == 0
    assert workers_server.log_tail().count("stopped") == 2


def test_metrics_of_several_workers_merge_counts_and_weight_quantiles():
    from netfab.serve.metrics import TIMERS, merge

    def worker(requests, p99, version):
        quantiles = {"count": requests, "mean": p99 / 2, "p50": p99 / 2, "p95": p99, "p99": p99}
        return {"model": {"name": "deep_v1", "version": version, "uri": "x"}, "model_loaded_at": 1.0,
                "requests": {"count": requests, "rate_1m": requests / 60, "by_status": {"200": requests}},
                **{name: dict(quantiles) for name in (*TIMERS, "batch_rows", "batch_requests")},
                "predicted_rows": requests, "cache_hits": 1, "cache_misses": 3, "rejected_requests": 0,
                "timed_out_requests": 0, "lone_requests": 0, "cache_hit_rate": 0.25,
                "queue_rows": 2,
                "models_in_memory": 1}

    merged = merge([worker(30, 0.010, "v1"), worker(10, 0.030, "v2")])
    assert merged["requests"]["count"] == 40 and merged["requests"]["by_status"] == {"200": 40}
    assert merged["requests_by_worker"] == [30, 10] and merged["versions"] == ["v1", "v2"]
    assert merged["request_seconds"]["p99"] == pytest.approx((30 * 0.010 + 10 * 0.030) / 40)
    assert merged["queue_rows"] == 4 and merged["cache_hit_rate"] == 0.25
