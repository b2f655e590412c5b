"""DriftMonitor: the reference profile's histograms over a sliding window of live traffic.

    monitor = DriftMonitor(ReferenceProfile.from_zip(package), window_rows=10_000)
    monitor.observe(columns, scores)          # per scored batch: raw columns (or rows) and their scores
    monitor.scores()                          # DriftScores: rows in the window, PSI per feature and score

The window is a ring of `slots` histograms, each filled with about window_rows / slots rows in turn;
the oldest is dropped whole when a new one starts. So memory is slots x bins numbers whatever the
traffic, a batch costs its binning (O(batch), vectorised: netfab.drift.profile) plus O(bins), and
the window holds the last window_rows rows to within one slot and one batch.
One monitor per model (per arm); safe to call from several threads.
"""
import dataclasses
import math
import threading

import numpy as np

from netfab.drift.profile import SCORE, ReferenceProfile, one_score_per_row

WINDOW_ROWS = 10_000  # enough for a PSI of a few bins to read near 0 on unchanged traffic
SLOTS = 10


@dataclasses.dataclass(frozen=True)
class DriftScores:
    rows: int  # rows in the window the scores were measured on
    features: dict[str, float]  # feature -> PSI against the reference (NaN: no rows yet)
    score: float  # PSI of the model's scores


class DriftMonitor:
    def __init__(self, profile: ReferenceProfile, window_rows: int = WINDOW_ROWS, slots: int = SLOTS):
        if window_rows < 1 or slots < 1:
            raise ValueError(f"window_rows ({window_rows}) and slots ({slots}) must be at least 1")
        self.profile = profile
        self.names = [*profile.features, SCORE]
        sizes = [len(profile.bins(name).labels) for name in self.names]
        self._spans = dict(zip(self.names, zip(np.cumsum([0] + sizes[:-1]), np.cumsum(sizes))))
        self._slot_rows_limit = math.ceil(window_rows / slots)
        self._slots = np.zeros((slots, sum(sizes)))
        self._slot_rows = np.zeros(slots, dtype=np.int64)
        self._window = np.zeros(sum(sizes))  # the sum of the slots, kept as they change
        self._current = 0
        self._lock = threading.Lock()

    def observe(self, columns, scores) -> None:
        """Count one scored batch: `columns` (name -> raw values) or a list of rows, and their scores."""
        if isinstance(columns, list):
            columns = self.profile.columns_from_rows(columns)
        scores = one_score_per_row(scores).astype(np.float64)  # [rows, classes]: the likeliest class's
        counts = self.profile.count(columns, scores)
        batch = np.zeros_like(self._window)
        for name, histogram in counts.items():
            start, end = self._spans[name]
            batch[start:end] = histogram
        with self._lock:
            if self._slot_rows[self._current] >= self._slot_rows_limit:
                self._current = (self._current + 1) % len(self._slot_rows)
                self._window -= self._slots[self._current]
                self._slots[self._current] = 0
                self._slot_rows[self._current] = 0
            self._slots[self._current] += batch
            self._window += batch
            self._slot_rows[self._current] += len(scores)

    def window_counts(self) -> tuple[int, dict[str, np.ndarray]]:
        """Rows in the window, and each histogram's counts over them (the score's under SCORE)."""
        with self._lock:
            window, rows = self._window.copy(), int(self._slot_rows.sum())
        return rows, {name: window[start:end] for name, (start, end) in self._spans.items()}

    def scores(self) -> DriftScores:
        rows, counts = self.window_counts()
        drift = self.profile.drift(counts)
        score = drift.pop(SCORE)
        return DriftScores(rows, drift, score)
