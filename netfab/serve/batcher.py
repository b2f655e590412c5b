"""MicroBatcher: merges requests from many clients into one model call, in a dedicated thread.

    batcher = MicroBatcher(max_batch_rows=16384, max_wait_ms=2, max_queue_rows=50_000)
    future = batcher.submit(columns, rows, model)   # concurrent.futures.Future -> float32 scores
    batcher.stop()                                   # finishes everything queued, then returns

    # fab serve: asyncio futures, a batch's answers settled in one turn of the event loop, and
    # each model call's joined rows handed on with the requests' tags (drift, shadows)
    batcher = MicroBatcher(..., deliver=loop.call_soon_threadsafe, on_scored=server.scored_rows)
    await batcher.submit(columns, rows, model, loop.create_future(), tag=("bookings", "deep_v1", ...))

Why: PredictionTime = RequestOverhead + N x ComputationTime, and the per-call overhead of the
SavedModel dwarfs the per-row cost, so 64 one-row requests answered by one call are
much cheaper than 64 calls.

Adapting to load: a request that finds the model idle and nothing else queued runs at once (no
wait, so one client alone sees the model's own latency; fab serve even skips this thread for a
small request alone on the server, see `idle`). When the previous batch merged k
requests there are about k concurrent clients, and the batcher waits up to max_wait_ms for k
requests (or max_batch_rows rows) before it runs. While the model runs, arrivals queue and
become the next batch by themselves.

Several models (versions, an experiment's arms) share the one queue and thread: a batch takes
what is queued, whatever the model, and calls each model once on its requests' rows. One thread
rather than one per model, because on a busy server the event loop is the bottleneck and every
extra Python thread takes the GIL from it; TensorFlow's own pool already spreads a call over the
cores. A batch holds its models only while it runs, so an unloaded model is freed after its last
requests are answered.

Answers go back as one hand-over per batch (`deliver`): fab serve settles a batch's asyncio
futures in one turn of its event loop, rather than one cross-thread wake-up of the loop, and one
trip of the GIL between the threads, per request. What else a scored row is for (drift tracking,
shadow models) is done after the answers, once per model call on its already joined columns
(`on_scored`), rather than once per request in the event loop.

The queue is bounded in rows: submit() raises QueueFull instead of letting memory and latency
grow without limit; the server answers that with 503 and Retry-After.
"""
import collections
import logging
import threading
import time
from concurrent.futures import Future

import numpy as np

from netfab.serve import columns as serving_columns

log = logging.getLogger(__name__)


# A call of at most this many rows runs on TensorFlow's single-threaded executor, every op in this
# thread: below it, handing ops to the inter-op threads and waking them costs more CPU than their
# parallelism saves, for no shorter call; above it the default one is faster (benchmarks/batch_threads.py).
# Graphs with loops fall back.
SINGLE_THREADED_ROWS = 512


class QueueFull(Exception):
    """More rows are waiting than max_queue_rows: the caller should shed this request."""


class _Pending:
    __slots__ = ("columns", "rows", "model", "future", "tag")

    def __init__(self, columns, rows, model, future, tag):
        self.columns, self.rows, self.model, self.future, self.tag = columns, rows, model, future, tag


class MicroBatcher:
    def __init__(self, max_batch_rows: int = 16384, max_wait_ms: float = 2.0,
                 max_queue_rows: int = 50_000, on_batch=None, deliver=None, on_scored=None):
        if max_batch_rows < 1 or max_queue_rows < 1 or max_wait_ms < 0:
            raise ValueError("max_batch_rows and max_queue_rows must be >= 1 and max_wait_ms >= 0")
        self.max_batch_rows, self.max_wait = max_batch_rows, max_wait_ms / 1000
        self.max_queue_rows = max_queue_rows
        self.on_batch = on_batch or (lambda requests, rows, seconds: None)
        # deliver(settle, answers): runs settle(answers) where the futures may be settled
        self.deliver = deliver or (lambda settle, answers: settle(answers))
        # on_scored(model, columns, scores, [(tag, rows) of each request]): after the answers, in this
        # thread, for each model call that had a request with a tag
        self.on_scored = on_scored
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_rows = 0
        self._lock = threading.Condition()
        self._stopping = False
        self._running = False  # a model call of this thread is under way
        self._last_batch_requests = 1
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    @property
    def idle(self) -> bool:
        """Nothing queued and no model call under way. Read without the lock: a stale answer
        only lets a lone request run beside a batch, or queue it behind one, both correct."""
        return not self._queue and not self._running

    def submit(self, columns: dict[str, np.ndarray], rows: int, model, future=None, tag=None):
        """Queue columns checked against `model`; the future (a concurrent.futures.Future unless
        given one, e.g. an asyncio future settled through `deliver`) gets the scores `model` gives them.
        tag: what on_scored is told of these rows (hashable; None: nothing)."""
        future = Future() if future is None else future
        with self._lock:
            if self._stopping:
                raise QueueFull("the batcher is stopping")
            # A request larger than the whole queue is still admitted into an empty queue, so
            # that a big (but body-limit-legal) request can run instead of being refused forever.
            if self._queued_rows and self._queued_rows + rows > self.max_queue_rows:
                raise QueueFull(f"{self._queued_rows} rows are queued (limit {self.max_queue_rows})")
            self._queue.append(_Pending(columns, rows, model, future, tag))
            self._queued_rows += rows
            # Wake the thread only when it would act: on a first request (it may be waiting for
            # one), or once the batch it waits for is complete. Each other arrival would wake it
            # to count the queue and sleep again: a trip of the GIL between threads, per request.
            queued = len(self._queue)
            if queued == 1 or queued >= self._last_batch_requests or self._queued_rows >= self.max_batch_rows:
                self._lock.notify()
        return future

    def stop(self, timeout: float = 60) -> None:
        """Refuse new requests, finish the queued ones, end the thread (timeout 0: without waiting for it)."""
        with self._lock:
            self._stopping = True
            self._lock.notify()
        if timeout:
            self._thread.join(timeout)

    # --- the model thread -------------------------------------------------------------------
    def _take_batch(self) -> list[_Pending] | None:
        with self._lock:
            while not self._queue:
                if self._stopping:
                    return None
                self._lock.wait()
            # Under load, expect about as many requests as the last batch held: wait for them
            # (at most max_wait) instead of running a half-empty batch and idling meanwhile.
            expected = self._last_batch_requests
            if expected > 1 and len(self._queue) < expected and self._queued_rows < self.max_batch_rows:
                deadline = time.monotonic() + self.max_wait
                while (len(self._queue) < expected and self._queued_rows < self.max_batch_rows
                       and not self._stopping):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._lock.wait(left)
            batch = [self._queue.popleft()]
            rows = batch[0].rows
            while self._queue and rows + self._queue[0].rows <= self.max_batch_rows:
                batch.append(self._queue.popleft())
                rows += batch[-1].rows
            self._queued_rows -= rows
            self._running = True
            return batch

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            try:
                self._score(batch)
            finally:
                self._running = False
            # not kept while waiting for the next: it holds its model, which may be unloaded meanwhile
            del batch

    def _score(self, batch: list[_Pending]) -> None:
        # A request whose client gave up (timeout) is dropped here rather than computed.
        batch = [p for p in batch if _wanted(p.future)]
        self._last_batch_requests = max(1, len(batch))
        by_model: dict[int, list[_Pending]] = {}  # by identity: requests checked against one model share its call
        for pending in batch:
            by_model.setdefault(id(pending.model), []).append(pending)
        answers, scored = [], []
        for requests in by_model.values():
            answers += self._call(requests, scored)
        if answers:
            self.deliver(_settle, answers)
        for model, columns, scores, tags in scored:
            try:
                self.on_scored(model, columns, scores, tags)
            except Exception:  # the answers are out; the thread lives on
                log.exception("on_scored failed for a batch of %d requests", len(tags))

    def _call(self, requests: list[_Pending], scored: list) -> list[tuple]:
        """(future, scores, error) of each request, from one call of their model; appends to
        `scored` what on_scored is to be told of it."""
        started = time.perf_counter()
        try:
            columns = serving_columns.concatenate([p.columns for p in requests])
            rows = sum(pending.rows for pending in requests)
            scores = requests[0].model.predict(columns, single_threaded=rows <= SINGLE_THREADED_ROWS)
        except Exception as error:  # the clients get the error; the thread lives on
            log.exception("model call failed for a batch of %d requests", len(requests))
            return [(pending.future, None, error) for pending in requests]
        answers, offset = [], 0
        for pending in requests:
            answers.append((pending.future, scores[offset:offset + pending.rows], None))
            offset += pending.rows
        self.on_batch(len(requests), offset, time.perf_counter() - started)
        if self.on_scored is not None and any(pending.tag is not None for pending in requests):
            scored.append((requests[0].model, columns, scores, [(pending.tag, pending.rows) for pending in requests]))
        return answers


def _wanted(future) -> bool:
    """False when the request's client gave up (its future cancelled): not worth computing."""
    if isinstance(future, Future):
        return future.set_running_or_notify_cancel()
    return not future.cancelled()  # an asyncio future read from this thread: at worst computed in vain


def _settle(answers: list[tuple]) -> None:
    for future, scores, error in answers:
        if future.done():  # an asyncio future cancelled meanwhile (its request timed out)
            continue
        if error is None:
            future.set_result(scores)
        else:
            future.set_exception(error)
