"""ShadowScorer: parts joined into one call per shadow, measured, logged, bounded, flushed on stop.
The models are stand-ins with the one method a shadow calls (no TensorFlow needed to see the flow)."""
import threading
import time

import numpy as np

from netfab.serve.metrics import ServingMetrics
from netfab.serve.shadow import ShadowScorer


class Model:
    version = "v1"

    def __init__(self, fail=False):
        self.calls, self.fail = [], fail

    def predict(self, columns, single_threaded=False):
        assert single_threaded, "a shadow never takes TensorFlow's pools from the live calls"
        if self.fail:
            raise RuntimeError("broken shadow")
        self.calls.append(columns["x"].tolist())
        return np.asarray(columns["x"], dtype=np.float32) / 8


class Log:  # records what the request log would be given
    def __init__(self):
        self.seen = []

    def observe(self, scored):
        self.seen.append((scored.request_id, scored.columns["x"].tolist(), scored.scores.tolist(), scored.role))


def metrics():
    return ServingMetrics(queue_rows=lambda: 0, model=lambda: None, models_in_memory=lambda collect=True: 0)


def arm(m, reference):
    return m.arm("bookings", reference, "shadow").as_json()


def test_parts_are_scored_in_one_call_measured_and_only_logged_requests_logged():
    m, model, log = metrics(), Model(), Log()
    shadows = ShadowScorer(m, request_log=log, wait_s=0.3)
    key = ("bookings", "rnn_v1", model)
    shadows.submit(key, {"x": np.array([1.0, 2.0])}, rows=2, requests=2)  # a batch of two requests
    shadows.submit(key, {"x": np.array([3.0])}, rows=1, requests=1, request=("id-3", b"{}", None))
    deadline = time.monotonic() + 10
    while arm(m, "rnn_v1")["requests"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    shadows.stop(5)
    assert model.calls == [[1.0, 2.0, 3.0]]
    figures = arm(m, "rnn_v1")
    assert (figures["requests"], figures["rows"], figures["errors"]) == (3, 3, 0)
    assert log.seen == [("id-3", [3.0], [0.375], "shadow")]


def test_beyond_max_rows_the_oldest_parts_are_dropped_and_counted_as_errors():
    m, model = metrics(), Model()
    shadows = ShadowScorer(m, wait_s=0.5, max_rows=4)
    key = ("bookings", "rnn_v1", model)
    for value in range(5):  # 10 rows, 5 requests, within one wait
        shadows.submit(key, {"x": np.full(2, float(value))}, rows=2, requests=1)
    shadows.stop(5)
    assert model.calls == [[3.0, 3.0, 4.0, 4.0]]  # the newest 4 rows
    figures = arm(m, "rnn_v1")
    assert (figures["requests"], figures["errors"], figures["rows"]) == (5, 3, 4)


def test_stop_scores_what_is_waiting_and_a_failing_shadow_counts_errors_without_stopping_the_others():
    m, good, bad = metrics(), Model(), Model(fail=True)
    shadows = ShadowScorer(m, wait_s=60)  # only stop() makes it score
    shadows.submit(("bookings", "bad", bad), {"x": np.array([1.0])}, rows=1, requests=1)
    shadows.submit(("bookings", "good", good), {"x": np.array([2.0])}, rows=1, requests=1)
    stopped = threading.Thread(target=shadows.stop, args=(10,))
    started = time.monotonic()
    stopped.start()
    stopped.join(15)
    assert time.monotonic() - started < 10, "stop() must not wait out the 60 s"
    assert good.calls == [[2.0]]
    assert arm(m, "bad")["errors"] == 1 and arm(m, "good")["errors"] == 0


def test_a_model_call_shared_by_several_routes_gives_each_its_own_rows(trained_zip):
    """scored_rows, as the batcher calls it, with the real drift tracking and shadow thread: a call
    whose requests came by a model's own name, by an experiment's arm with a shadow, and untagged."""
    from netfab.serve.app import PredictionServer, ServerSettings
    from netfab.serve.model import ServingModel
    from tests.helpers import fixture_rows

    model = ServingModel.load(trained_zip)
    server = PredictionServer([trained_zip], ServerSettings(drift_rows_per_s=100_000))
    server.shadows.wait_s = 0.1
    columns = model.inputs.columns_from_rows(fixture_rows(6))
    scores = model.predict(columns)
    arm, direct = ("bookings", "deep_v1/labels/stable", (("rnn_v1", model),), None), (model.name, "", (), None)
    server.scored_rows(model, columns, scores, [(arm, 2), (None, 1), (direct, 2), (arm, 1)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        drift = {(e["endpoint"], e["arm"], e["role"]): e["rows"] for e in server.drift.as_json()}
        if len(drift) == 3 and server.metrics.arm("bookings", "rnn_v1", "shadow").as_json()["rows"]:
            break
        time.sleep(0.05)
    server.shadows.stop(5)
    assert drift == {("bookings", "deep_v1/labels/stable", "live"): 3, (model.name, "", "live"): 2,
                     ("bookings", "rnn_v1", "shadow"): 3}
    shadow = server.metrics.arm("bookings", "rnn_v1", "shadow").as_json()
    assert (shadow["requests"], shadow["rows"]) == (2, 3)  # the arm's two requests, rows 0, 1 and 5
    np.testing.assert_allclose(shadow["score_sum"], float(scores[[0, 1, 5]].sum()), rtol=1e-5)


def test_a_shadow_model_is_not_held_once_its_rows_are_scored():
    """An unloaded shadow's model must be freed: the shadow thread keeps nothing between rounds."""
    import gc
    import weakref

    m, model = metrics(), Model()
    shadows = ShadowScorer(m, wait_s=0.05)
    shadows.submit(("bookings", "rnn_v1", model), {"x": np.array([1.0])}, rows=1, requests=1)
    deadline = time.monotonic() + 10
    while arm(m, "rnn_v1")["requests"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # a few more rounds of the thread, with nothing submitted
    held = weakref.ref(model)
    del model
    gc.collect()
    try:
        assert held() is None, "the shadow thread still holds the model after scoring its rows"
    finally:
        shadows.stop(5)
