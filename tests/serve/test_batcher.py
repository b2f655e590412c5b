"""MicroBatcher with a real loaded model: merging, order of results, the queue bound, cancellation."""
import threading
from concurrent.futures import CancelledError

import numpy as np
import pytest

from netfab.serve.batcher import MicroBatcher, QueueFull
from tests.helpers import fixture_rows


@pytest.fixture(scope="module")
def model(trained_zip):
    from netfab.serve.model import ServingModel

    loaded = ServingModel.load(trained_zip)
    loaded.warm_up()
    return loaded


def test_concurrent_requests_are_merged_and_each_gets_its_own_rows(model):
    rows = fixture_rows(64)
    expected = model.predict(model.inputs.columns_from_rows(rows))
    batches = []
    batcher = MicroBatcher(max_batch_rows=64, max_wait_ms=5,
                           on_batch=lambda requests, count, seconds: batches.append(requests))
    futures = [None] * len(rows)
    start = threading.Barrier(8)

    def client(first):
        start.wait()
        for i in range(first, len(rows), 8):
            futures[i] = batcher.submit(model.inputs.columns_from_rows([rows[i]]), 1, model)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    scores = np.concatenate([future.result(timeout=60) for future in futures])
    batcher.stop()
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert sum(batches) == len(rows) and len(batches) < len(rows), batches


def test_a_full_queue_refuses_instead_of_growing(model):
    batcher = MicroBatcher(max_batch_rows=10, max_queue_rows=10)
    big = model.inputs.sample_columns(200_000)  # keeps the model thread busy for a while
    small = model.inputs.sample_columns(10)
    first = batcher.submit(big, 200_000, model)
    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(batcher.submit(small, 10, model))
        except QueueFull as error:
            outcomes.append(error)
        assert batcher.queued_rows <= 200_000
    assert any(isinstance(o, QueueFull) for o in outcomes), outcomes
    assert first.result(timeout=120).shape == (200_000,)
    batcher.stop()


def test_a_cancelled_request_is_not_computed(model):
    rows_scored = []
    batcher = MicroBatcher(max_queue_rows=200_000,
                           on_batch=lambda requests, count, seconds: rows_scored.append(count))
    busy = batcher.submit(model.inputs.sample_columns(100_000), 100_000, model)
    dropped = batcher.submit(model.inputs.sample_columns(7), 7, model)
    cancelled = dropped.cancel()  # True unless the model thread already took it (a race it rarely wins)
    busy.result(timeout=120)
    batcher.stop()
    if cancelled:
        with pytest.raises(CancelledError):
            dropped.result()
        assert rows_scored == [100_000], rows_scored


class StandIn:
    """A model with the one method the batcher calls, no TensorFlow: its scores are answer(column x)."""

    def __init__(self, answer=lambda x: x):
        self.answer, self.calls = answer, []

    def predict(self, columns, single_threaded=False):
        x = np.asarray(columns["x"], dtype=np.float32)
        self.calls.append(len(x))
        return self.answer(x)


class Gate(StandIn):
    """Holds the batcher's thread in predict until opened, so that what is submitted meanwhile queues up."""

    def __init__(self, answer=lambda x: x):
        super().__init__(answer)
        self.entered, self.open = threading.Event(), threading.Event()

    def predict(self, columns, single_threaded=False):
        self.entered.set()
        self.open.wait(5)
        return super().predict(columns)


def constant(value):
    return lambda x: np.full(len(x), value, dtype=np.float32)


def test_models_share_the_thread_each_scoring_its_own_requests_and_none_kept_after():
    import gc
    import weakref

    gate, first, second = Gate(constant(0.5)), StandIn(constant(0.25)), StandIn(constant(0.75))
    batcher = MicroBatcher(max_batch_rows=64, max_wait_ms=1, max_queue_rows=1000)
    held = batcher.submit({"x": np.zeros(1)}, 1, gate)
    futures = [batcher.submit({"x": np.zeros(2)}, 2, model) for model in (first, second) * 10]
    gate.open.set()
    assert held.result(5)[0] == 0.5
    assert [f.result(5)[0] for f in futures] == [0.25, 0.75] * 10  # each request scored by its own model
    assert first.calls == second.calls == [20]  # interleaved in the queue, one call per model
    gone = weakref.ref(first)
    del first, futures
    gc.collect()
    assert gone() is None, "the last batch must not keep an unloaded model alive"
    batcher.stop()
    assert batcher.idle


def test_asyncio_futures_of_a_batch_are_settled_in_one_turn_of_the_loop_and_a_cancelled_one_skipped():
    import asyncio

    hand_overs = []

    async def main():
        loop = asyncio.get_running_loop()
        gate = Gate()  # holds the thread, so that the next requests make one batch
        batcher = MicroBatcher(max_wait_ms=1, deliver=lambda settle, answers: (
            hand_overs.append(len(answers)), loop.call_soon_threadsafe(settle, answers)))
        blocker = batcher.submit({"x": np.zeros(1)}, 1, gate)
        assert gate.entered.wait(5)
        model = StandIn()
        futures = [batcher.submit({"x": np.full(1, i)}, 1, model, loop.create_future()) for i in range(8)]
        futures[3].cancel()  # its client gave up before the batch ran: not computed, not settled
        gate.open.set()
        await asyncio.wait([f for i, f in enumerate(futures) if i != 3], timeout=5)
        blocker.result(5)
        batcher.stop()
        return [f.result() for i, f in enumerate(futures) if i != 3], futures[3].cancelled()

    scores, cancelled = asyncio.run(main())
    assert [s[0] for s in scores] == [0, 1, 2, 4, 5, 6, 7] and cancelled
    assert hand_overs == [1, 7]  # the blocker's batch, then seven answers in one hand-over


def test_after_the_answers_each_model_call_is_handed_on_once_with_its_requests_tags_in_order():
    def double(x):
        return x * 2

    told, answered_first = [], []
    first, second, gate = StandIn(double), StandIn(double), Gate(double)

    def on_scored(model, columns, scores, tags):
        answered_first.append(all(f.done() for f in futures))  # the answers went out before
        told.append((model, columns["x"].tolist(), scores.tolist(), tags))
        if model is second:
            raise RuntimeError("a bug in on_scored")  # logged; the thread and the answers go on

    batcher = MicroBatcher(max_batch_rows=64, max_wait_ms=1, on_scored=on_scored)
    held = batcher.submit({"x": np.zeros(1)}, 1, gate)  # no tag: nothing to hand on
    futures = [batcher.submit({"x": np.array([1.0, 2.0])}, 2, first, tag="a"),
               batcher.submit({"x": np.array([3.0])}, 1, second, tag="c"),
               batcher.submit({"x": np.array([4.0])}, 1, first),
               batcher.submit({"x": np.array([5.0])}, 1, first, tag="b")]
    gate.open.set()
    held.result(5)
    assert [f.result(5).tolist() for f in futures] == [[2, 4], [6], [8], [10]]
    after = batcher.submit({"x": np.array([6.0])}, 1, first, tag="d")  # the thread outlived the bug
    assert after.result(5).tolist() == [12]
    batcher.stop()
    assert told == [(first, [1, 2, 4, 5], [2, 4, 8, 10], [("a", 2), (None, 1), ("b", 1)]),
                    (second, [3], [6], [("c", 1)]),
                    (first, [6], [12], [("d", 1)])]
    assert answered_first == [True, True, True]


def test_arrivals_wake_the_thread_only_when_the_batch_it_waits_for_is_complete():
    import time

    sizes = []
    batcher = MicroBatcher(max_wait_ms=3000, on_batch=lambda requests, rows, seconds: sizes.append(requests))
    gate, model = Gate(constant(0)), StandIn(constant(0))
    held = batcher.submit({"x": np.zeros(1)}, 1, gate)
    assert gate.entered.wait(5)
    four = [batcher.submit({"x": np.zeros(1)}, 1, model) for _ in range(4)]  # queued while the thread is held
    gate.open.set()
    held.result(5), [f.result(5) for f in four]  # a batch of four: the thread now expects four at a time
    while not batcher.idle:
        time.sleep(0.001)
    wakes = []
    notify = batcher._lock.notify
    batcher._lock.notify = lambda n=1: (wakes.append(len(batcher._queue)), notify(n))
    started = time.monotonic()
    futures = [batcher.submit({"x": np.zeros(1)}, 1, model) for _ in range(4)]
    [f.result(5) for f in futures]
    assert time.monotonic() - started < 2, "the fourth arrival must wake the thread, not the 3 s wait's end"
    assert wakes == [1, 4], wakes  # the first arrival (the thread may wait for one), then the fourth
    assert sizes == [1, 4, 4], sizes
    batcher.stop()
