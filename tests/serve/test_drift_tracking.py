"""Drift at /metrics over real HTTP: fab serve bins a sample of its traffic against the zip's
training profile; PSI stays low on rows from the training distribution and passes the act level
on a shifted set (data/fixture.py, shift=True), per model, and the cap on binned rows holds."""
import re
import time

import pytest

from netfab.drift.psi import ACT, WATCH
from tests.drift.test_drift import fixture_rows
from tests.serve.helpers import ServerProcess, call

pytestmark = pytest.mark.slow  # a server start-up and 12,000 scored rows


def drift_psi(port: int) -> dict[str, float]:
    """feature -> PSI of the served model, read from the Prometheus text at /metrics."""
    text = call(port, "GET", "/metrics").body["text"]
    return {feature: float(value) for feature, value in
            re.findall(r'^netfab_drift_psi\{[^}]*feature="([^"]+)"\} (\S+)$', text, re.M)}


def window_rows(port: int) -> int:
    entries = call(port, "GET", "/metrics?format=json").body["drift"]
    return sum(entry["rows"] for entry in entries)


def send(port: int, rows: list[dict], batch: int = 500) -> None:
    for start in range(0, len(rows), batch):
        reply = call(port, "POST", "/v1/models/deep_v1:predict", {"instances": rows[start:start + batch]})
        assert reply.status == 200, reply.body


def wait_for_rows(port: int, rows: int) -> None:
    """The drift thread bins after the answers: wait (bounded) until it has caught up."""
    deadline = time.monotonic() + 30
    while window_rows(port) < rows and time.monotonic() < deadline:
        time.sleep(0.1)


def test_drift_is_low_on_training_like_traffic_and_past_act_on_shifted_traffic(trained_zip, tmp_path):
    with ServerProcess(trained_zip, "--drift-rows-per-s=1000000", log_path=tmp_path / "serve.log") as server:
        send(server.port, fixture_rows(seed=11, rows=4000))
        wait_for_rows(server.port, 4000)
        same = drift_psi(server.port)
        assert {"country", "price", "score"} <= set(same)
        assert max(same.values()) < WATCH, same

        send(server.port, fixture_rows(seed=12, shift=True, rows=12000))  # the 10,000-row window turns over
        # The window holds 10,000 rows before the drift thread has binned all the shifted ones: wait
        # (bounded) for it to catch up rather than read a window still half of the first traffic.
        deadline = time.monotonic() + 30
        while min((shifted := drift_psi(server.port))["country"], shifted["price"]) < ACT \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert shifted["country"] >= ACT and shifted["price"] >= ACT, shifted


def test_the_rows_binned_per_second_are_capped_and_drift_can_be_off(trained_zip, tmp_path):
    rows = fixture_rows(seed=11, rows=3000)
    with ServerProcess(trained_zip, "--drift-rows-per-s=200", log_path=tmp_path / "capped.log") as server:
        send(server.port, rows, batch=3000)  # one request, within one second
        wait_for_rows(server.port, 1)
        assert 0 < window_rows(server.port) <= 200
    with ServerProcess(trained_zip, "--drift-rows-per-s=0", log_path=tmp_path / "off.log") as server:
        send(server.port, rows[:100])
        assert drift_psi(server.port) == {}
        assert call(server.port, "GET", "/metrics?format=json").body["drift"] == []


def test_the_rows_a_second_are_shared_by_the_models_and_arms_with_traffic(trained_zip, monkeypatch):
    """In-process, with a clock the test moves: one budget for the server, not one per arm."""
    from types import SimpleNamespace

    import numpy as np

    from netfab.serve import drift_tracking
    from netfab.serve.model import ServingModel
    from netfab.serve.request_log import ScoredRows

    model = ServingModel.load(trained_zip)
    clock = [100.0]
    monkeypatch.setattr(drift_tracking, "time", SimpleNamespace(monotonic=lambda: clock[0], sleep=time.sleep))
    tracking = drift_tracking.DriftTracking(rows_per_s=300)
    columns, scores = model.inputs.sample_columns(1000), np.full(1000, 0.5, dtype=np.float32)
    for second in (100.0, 101.0):
        clock[0] = second
        for arm in ("a", "b"):
            tracking.observe(ScoredRows("bookings", arm, "live", model, columns, scores, "", False))
    deadline = time.monotonic() + 30
    while sum(entry["rows"] for entry in tracking.as_json()) < 900 and time.monotonic() < deadline:
        time.sleep(0.05)
    # The first second, each key alone so far: the whole budget; then two keys share it.
    assert {entry["arm"]: entry["rows"] for entry in tracking.as_json()} == {"a": 450, "b": 450}


def _ten_rows_observed(trained_zip):
    """(the real trained model, a DriftTracking that was handed ten of its scored rows)."""
    import numpy as np

    from netfab.serve import drift_tracking
    from netfab.serve.model import ServingModel
    from netfab.serve.request_log import ScoredRows

    model = ServingModel.load(trained_zip)
    tracking = drift_tracking.DriftTracking(rows_per_s=1000)
    tracking.observe(ScoredRows("deep_v1", "", "live", model, model.inputs.sample_columns(10),
                                np.full(10, 0.5, dtype=np.float32), "", False))
    return model, tracking


def test_the_drift_thread_does_not_hold_a_model_once_its_rows_are_binned(trained_zip):
    """An unloaded model must be freed even when no traffic follows: the drift thread keeps nothing
    of a part between ticks."""
    import gc
    import weakref

    from netfab.serve import drift_tracking

    model, tracking = _ten_rows_observed(trained_zip)
    deadline = time.monotonic() + 30
    while sum(entry["rows"] for entry in tracking.as_json()) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tracking.as_json()[0]["rows"] == 10
    time.sleep(3 * drift_tracking.TICK_S)  # ticks with nothing queued
    held = weakref.ref(model)
    del model
    gc.collect()
    assert held() is None, "the drift thread still holds the model after binning its rows"


def test_a_key_is_shown_only_once_its_first_rows_are_binned(trained_zip, monkeypatch):
    """/metrics never shows a key with an empty window while its first part is being binned (a test
    waiting for a key, then reading its rows, raced with the binning when it was shown first)."""
    from netfab.drift.monitor import DriftMonitor

    observe = DriftMonitor.observe

    def slow_observe(self, *args, **kwargs):  # a wide window between making the key's monitor and its rows
        time.sleep(0.5)
        return observe(self, *args, **kwargs)

    monkeypatch.setattr(DriftMonitor, "observe", slow_observe)
    _, tracking = _ten_rows_observed(trained_zip)
    seen, deadline = [], time.monotonic() + 30
    while not seen and time.monotonic() < deadline:
        seen = tracking.as_json()
        time.sleep(0.01)
    assert [entry["rows"] for entry in seen] == [10]
