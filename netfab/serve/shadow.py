"""Shadow models: scored on rows already answered, in a thread of their own, never answering.

    shadows = ShadowScorer(metrics, drift=tracking, request_log=log)
    shadows.submit(("bookings", "rnn_v1", model), columns, rows=64, requests=64)  # a batch's rows
    shadows.submit(key, columns, rows=3, requests=1, request=("<id>", body, None))   # a logged request's
    shadows.stop(timeout=30)                      # what is waiting, scored, then the thread ends

The micro-batcher hands over each batch's already joined columns once it has answered them (one
hand-over per batch, not per request). Every SHADOW_WAIT_S this thread joins what each shadow got
meanwhile and scores it in one single-threaded model call (TensorFlow's own pools stay with the live
calls), so a shadow costs its rows' model work and little else. Its scores go to the shadow's metrics
(netfab.serve.metrics, role "shadow"), to drift tracking, and for the requests the request log keeps,
to the log. Beyond SHADOW_MAX_ROWS rows waiting for a shadow the oldest are dropped and counted in
its errors: a shadow never holds live requests back nor grows memory without bound.
"""
import collections
import logging
import queue
import threading
import time

from netfab.serve import columns as serving_columns
from netfab.serve.request_log import ScoredRows

log = logging.getLogger(__name__)

SHADOW_WAIT_S = 0.2  # rows wait at most this long to be scored together (the answer never waits)
SHADOW_MAX_ROWS = 50_000  # rows waiting per shadow at most; beyond, the oldest are dropped (and counted)


class _Part:
    __slots__ = ("columns", "rows", "requests", "request")

    def __init__(self, columns, rows, requests, request):
        self.columns, self.rows, self.requests, self.request = columns, rows, requests, request


class ShadowScorer:
    def __init__(self, metrics, drift=None, request_log=None, wait_s: float = SHADOW_WAIT_S,
                 max_rows: int = SHADOW_MAX_ROWS):
        self.metrics, self.drift, self.request_log = metrics, drift, request_log
        self.wait_s, self.max_rows = wait_s, max_rows
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    def submit(self, key: tuple, columns: dict, rows: int, requests: int, request: tuple | None = None) -> None:
        """Rows answered by a live model, for the shadow `key` = (endpoint, reference, model) to score.
        request: (id, body, rows of the request) when the request log keeps these rows' request."""
        self._queue.put((key, _Part(columns, rows, requests, request)))

    def stop(self, timeout: float) -> None:
        """Score what is waiting (within `timeout` seconds), then end the thread."""
        self._stop.set()
        self._thread.join(timeout)

    # --- the shadow thread --------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.wait_s)
            self._score_waiting()
            if stopping and self._queue.empty():
                return

    def _score_waiting(self) -> None:
        """What was submitted since the last round, joined per shadow and scored. Everything it
        holds ends with the call: a key holds its model, which an unload must be able to free."""
        waiting: dict[tuple, collections.deque] = {}  # key -> parts, oldest first
        while True:
            try:
                key, part = self._queue.get_nowait()
            except queue.Empty:
                break
            waiting.setdefault(key, collections.deque()).append(part)
        for key, parts in waiting.items():
            self._drop_oldest(key, parts)  # leaves at least the newest part
            self._score(key, list(parts))

    def _drop_oldest(self, key: tuple, parts: collections.deque) -> None:
        rows = sum(part.rows for part in parts)
        while rows > self.max_rows and len(parts) > 1:
            dropped = parts.popleft()
            rows -= dropped.rows
            self.metrics.arm(key[0], key[1], "shadow").record_errors(dropped.requests)

    def _score(self, key: tuple, parts: list[_Part]) -> None:
        endpoint, reference, model = key
        metrics = self.metrics.arm(endpoint, reference, "shadow")
        requests = sum(p.requests for p in parts)
        started = time.perf_counter()
        try:
            columns = serving_columns.concatenate([p.columns for p in parts])
            scores = model.predict(columns, single_threaded=True)
        except Exception as error:  # never the live requests' problem
            metrics.record_errors(requests)
            log.warning("shadow %s: %d requests not scored: %s", reference, requests, error)
            return
        metrics.record(requests, len(scores), time.perf_counter() - started, scores)
        if self.drift is not None:
            self.drift.observe(ScoredRows(endpoint, reference, "shadow", model, columns, scores, "", False))
        if self.request_log is not None:
            offset = 0
            for part in parts:
                if part.request is not None:
                    request_id, body, rows = part.request
                    self.request_log.observe(ScoredRows(
                        endpoint, reference, "shadow", model,
                        {name: column[offset:offset + part.rows] for name, column in columns.items()},
                        scores[offset:offset + part.rows], request_id, True, body, rows))
                offset += part.rows

