"""Drift at /metrics over real HTTP: fab serve bins a sample of its traffic against the zip's
training profile; PSI stays low on rows from the training distribution and passes the act level
on a shifted set (data/fixture.py, shift=True), per model, and the cap on binned rows holds."""
import re

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
    import time

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
        wait_for_rows(server.port, 9000)
        shifted = drift_psi(server.port)
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
