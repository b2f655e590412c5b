"""Drift of live traffic, per model and experiment arm: DriftMonitors fed with the rows the server scored.

    tracking = DriftTracking(rows_per_s=2000)
    tracking.observe(ScoredRows(...))             # rows scored (netfab.serve.app.scored_rows, the shadows)
    tracking.as_json()                            # window histograms + reference: the /metrics "drift" entry
    drift_scores(entry)                           # that entry's PSI per feature and for the score

Each (endpoint, arm, role, model version) whose zip holds a reference profile (netfab.drift) gets
a DriftMonitor over a sliding window of its rows. The batcher's thread (a model call's rows), the
shadows' and now and then the event loop only hand a part over (or drop it): the binning runs in
a thread of its own, a few times a second on what was queued meanwhile, at most `rows_per_s`
rows a second in all, shared equally by the keys that had traffic in the
previous second, so the cost of tracking has a ceiling whatever the traffic and however many
arms and shadows an experiment has (a drift estimate needs a sample, not every row).

The metrics carry the window's histogram counts, not PSI, so that the counts of several workers
(fab serve --workers) add up before PSI is computed (merge_drift).
"""
import collections
import logging
import queue
import threading
import time

import numpy as np

from netfab.drift.monitor import DriftMonitor
from netfab.drift.psi import population_stability
from netfab.serve import columns as serving_columns
from netfab.serve.columns import ByteSlices

log = logging.getLogger(__name__)

DRIFT_ROWS_PER_S = 2000  # rows binned per second in all: one model's 10,000-row window in 5 s of traffic
QUEUE_PARTS = 1024  # parts waiting for the drift thread; beyond it parts are skipped
TICK_S = 0.1  # how often the drift thread bins what was queued meanwhile


class DriftTracking:
    def __init__(self, rows_per_s: float = DRIFT_ROWS_PER_S):
        self.rows_per_s = rows_per_s
        self.monitors: dict[tuple, DriftMonitor] = {}
        self._second = None  # the second the budgets below are for
        self._budget: dict[tuple, float] = {}  # key -> rows it may still hand over this second
        self._share = rows_per_s  # each key's budget this second
        self._queue: queue.Queue = queue.Queue(QUEUE_PARTS)  # full: the thread fell behind, parts are skipped
        self._budget_lock = threading.Lock()  # observe() is called from several threads
        self._thread = threading.Thread(target=self._bin, name="drift", daemon=True)
        self._thread.start()

    # --- the scoring side: cheap, never blocks ------------------------------------------------------
    def observe(self, scored) -> None:
        """Queue a sample of a scored part (netfab.serve.request_log.ScoredRows) for the drift thread."""
        profile = getattr(scored.model, "drift_profile", None)
        if profile is None:  # trained before zips held a profile: nothing to compare against
            return
        key = (scored.endpoint, scored.arm, scored.role, scored.model.version)
        with self._budget_lock:
            now = int(time.monotonic())
            if now != self._second:  # a new second: the keys that had traffic in the last share the budget
                self._share = self.rows_per_s / max(1, len(self._budget))
                self._second, self._budget = now, {}
            left = self._budget.get(key, self._share)
            take = int(min(len(scored.scores), left))
            self._budget[key] = left - max(take, 0)
        if take <= 0:
            return
        try:
            self._queue.put_nowait((key, scored.model, scored.columns, scored.scores, take))
        except queue.Full:  # a sample is a sample: skipping a part costs drift nothing but rows
            return

    # --- the drift thread ---------------------------------------------------------------------------
    def _bin(self) -> None:
        """Every TICK_S, the parts queued meanwhile, joined per key and binned in one call each: a
        call's fixed cost is most of a one-row part's, so a busy server of single rows pays it a few
        times a second, not once a request."""
        while True:
            time.sleep(TICK_S)
            self._bin_queued()

    def _bin_queued(self) -> None:
        """What was queued since the last tick. Everything it holds ends with the call: a part holds
        its model, which an unload must be able to free."""
        parts: dict[tuple, list] = {}
        for _ in range(QUEUE_PARTS):
            try:
                key, model, columns, scores, take = self._queue.get_nowait()
            except queue.Empty:
                break
            if take < len(scores):  # the part's first rows, within the key's budget
                columns, scores = {name: column[:take] for name, column in columns.items()}, scores[:take]
            parts.setdefault((key, model), []).append((columns, scores))
        for (key, model), scored in parts.items():
            try:
                monitor = self.monitors.get(key)
                if monitor is None:
                    monitor = DriftMonitor(model.drift_profile)
                columns = serving_columns.concatenate([c for c, _ in scored])
                monitor.observe(raw_columns(columns, model, monitor.profile.features),
                                np.concatenate([s for _, s in scored]))
                self.monitors[key] = monitor  # a new key is shown once it holds its first rows, never empty
            except Exception:  # a bug here must not stop the thread (nor the requests, which never wait)
                log.exception("drift: %d parts of %s could not be binned", len(scored), key)

    # --- the metrics' side ----------------------------------------------------------------------
    def as_json(self) -> list[dict]:
        """Per key: its window's histogram counts and the reference fractions they are compared with."""
        entries = []
        for (endpoint, arm, role, version), monitor in sorted(self.monitors.items()):
            rows, counts = monitor.window_counts()
            entries.append({"endpoint": endpoint, "arm": arm, "role": role, "version": version, "rows": rows,
                            "counts": {name: histogram.tolist() for name, histogram in counts.items()},
                            "reference": {name: monitor.profile.bins(name).fractions.tolist() for name in counts}})
        return entries


def raw_columns(columns: dict, model, features) -> dict:
    """The checked columns as the profile counts them: strings as text, and a number equal to its
    training mean as null (the server filled every null with it; a real value hits that float32
    exactly almost never, and counting the fills as values would read as drift of the null rate)."""
    fill = model.inputs.numeric_fill
    raw = {}
    for name in features:
        column = columns.get(name)
        if column is None:
            continue
        if isinstance(column, ByteSlices):
            column = column.to_numpy()
        elif name in fill and isinstance(column, np.ndarray):
            column = np.where(column == np.float32(fill[name]), np.nan, column.astype(np.float64))
        elif not isinstance(column, np.ndarray):  # a tensor (gRPC's TF Serving path)
            column = np.asarray(column)
        raw[name] = column
    return raw


def merge_drift(workers: list[list[dict]]) -> list[dict]:
    """Several workers' drift entries as one per key: their window counts added up."""
    merged: dict[tuple, dict] = collections.OrderedDict()
    for entries in workers:
        for entry in entries:
            key = (entry["endpoint"], entry["arm"], entry["role"], entry["version"])
            into = merged.get(key)
            if into is None:
                merged[key] = {**entry, "counts": {k: list(v) for k, v in entry["counts"].items()}}
                continue
            into["rows"] += entry["rows"]
            for name, counts in entry["counts"].items():
                into["counts"][name] = [a + b for a, b in zip(into["counts"][name], counts)]
    return list(merged.values())


def drift_scores(entry: dict) -> dict[str, float]:
    """PSI of each feature and of the score (SCORE) of a drift entry; NaN while its window is empty."""
    return {name: population_stability(entry["reference"][name], counts) for name, counts in entry["counts"].items()}
