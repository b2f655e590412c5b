"""Request logging: a sampled share of requests, with their scores, arm and model, as NDJSON shards.

    log = RequestLog("gs://bucket/request-log/bookings", fraction=0.01, max_mb=64, max_seconds=300)
    log.observe(ScoredRows(...))              # a sampled request's rows (netfab.serve.app, shadow)
    log.close()                               # publishes the last shard

Each logged row is a training row (docs/data.md): the model's features as the model saw them
(a null string as "", a null number as the training mean), then what the server knew:

    {"country": "DE", ..., "price": 83.26, "impression_id": "imp-1",            <- the request's row
     "score": 0.031, "arm": "deep_v1/labels/canary", "role": "live",            <- what answered
     "model": "deep_v1", "model_version": "<run id>", "request_id": "9f1c...", "row": 0,
     "logged_at": "2026-11-29T15:02:19.123Z"}

The id column (impression_id) is kept when the request sent it (REST row and columnar forms);
join the label column on it and the shards are a `fab train --dataset`, and `fab predict --input`
rows. A shadow's scores are logged beside the live arm's, under its own arm and role "shadow".

A shard is held in memory and published whole (netfab.storage.publish_file: a rename, or one
gs:// upload) once it holds max_mb or is max_seconds old, by a background thread, so that a
request never waits on storage; readers see whole shards or none. Shard names sort by time and
carry the process id: workers (fab serve --workers) write beside each other.
"""
import dataclasses
import datetime
import logging
import os
import random
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import orjson

from netfab import storage
from netfab.errors import NetfabError

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0  # how often the background thread looks for a shard old enough to publish


@dataclasses.dataclass
class ScoredRows:
    """Rows scored by one model, as the request log and drift tracking take them: one request's
    (the log), or a model call's of many requests (drift; request_id "" and sampled False)."""
    endpoint: str  # the name the request used: a model's, or an experiment's endpoint
    arm: str  # the experiment arm (a model reference); "" outside an experiment
    role: str  # "live" (answered) or "shadow" (scored beside, never returned)
    model: object  # the ServingModel that scored them
    columns: dict  # the checked feature columns (numpy arrays or ByteSlices)
    scores: np.ndarray
    request_id: str  # one per request: its live and shadow parts share it
    sampled: bool  # the request log keeps this request
    body: bytes | None = None  # a REST JSON body, for the id column; None for other protocols
    rows: np.ndarray | None = None  # which rows of the request these are (an experiment keyed by a feature)


class RequestLog:
    def __init__(self, uri: str, fraction: float, max_mb: float = 64.0, max_seconds: float = 300.0):
        if not 0 < fraction <= 1:
            raise NetfabError(f"--log-fraction must be above 0 and at most 1 (the share of requests logged), "
                              f"got {fraction}")
        if max_mb <= 0 or max_seconds <= 0:
            raise NetfabError(f"--log-shard-mb and --log-shard-seconds must be above 0, got {max_mb} and {max_seconds}")
        if not storage.is_gcs(uri):
            storage.local_path(uri).mkdir(parents=True, exist_ok=True)  # a bad path is found at start-up
        self.uri, self.fraction = uri, fraction
        self.max_bytes, self.max_seconds = int(max_mb * 2**20), max_seconds
        self._lines: list[bytes] = []
        self._bytes, self._opened = 0, time.monotonic()
        self._lock = threading.Lock()
        self._sequence = 0
        self.published: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish_when_due, name="request-log", daemon=True)
        self._thread.start()

    def sample(self) -> bool:
        """Whether to keep the next request."""
        return random.random() < self.fraction

    def observe(self, scored: ScoredRows) -> None:
        """Append a sampled request's rows (encoding only, no I/O: called from the event loop, and
        for shadows from their thread)."""
        if not scored.sampled:
            return
        columns = {name: _values(column) for name, column in scored.columns.items()}
        count = len(scored.scores)
        ids = _ids(scored.body, scored.model.id_column, count, scored.rows)
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        rows = scored.rows.tolist() if scored.rows is not None else range(count)
        model = scored.model
        lines = []
        for i, (row, score) in enumerate(zip(rows, _values(scored.scores))):
            record = {name: values[i] for name, values in columns.items()}
            if ids is not None:
                record[model.id_column] = ids[i]
            record.update(score=score, arm=scored.arm, role=scored.role, endpoint=scored.endpoint, model=model.name,
                          model_version=model.version, request_id=scored.request_id, row=row, logged_at=stamp)
            lines.append(orjson.dumps(record) + b"\n")
        with self._lock:
            self._lines += lines
            self._bytes += sum(map(len, lines))
            full = self._bytes >= self.max_bytes
        if full:
            threading.Thread(target=self._publish, name="request-log-shard", daemon=True).start()

    def close(self) -> None:
        """Publish what is held and stop the background thread."""
        self._stop.set()
        self._thread.join()
        self._publish()

    # --- shards -----------------------------------------------------------------------------
    def _publish_when_due(self) -> None:
        while not self._stop.wait(CHECK_SECONDS):
            if self._lines and time.monotonic() - self._opened >= self.max_seconds:
                self._publish()

    def _publish(self) -> None:
        with self._lock:
            lines, self._lines, self._bytes, self._opened = self._lines, [], 0, time.monotonic()
            self._sequence += 1
            sequence = self._sequence
        if not lines:
            return
        name = f"requests-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{os.getpid()}-{sequence:05d}.json"
        target = storage.join(self.uri, name)
        try:
            with tempfile.TemporaryDirectory(prefix="netfab-request-log-") as tmp:
                shard = Path(tmp) / name
                shard.write_bytes(b"".join(lines))
                storage.publish_file(shard, target, move=True)
        except (NetfabError, OSError) as error:  # serving goes on; the shard's rows are lost, and said so
            log.error("request log: could not publish %d rows to %s: %s", len(lines), target, error)
            return
        self.published.append(target)
        log.info("request log: %d rows -> %s", len(lines), target)


def _values(column) -> list:
    """A column's values as JSON takes them; a float32 as its shortest repr (83.26, not 83.26000213623047)."""
    if isinstance(column, np.ndarray) and column.dtype == np.float32:
        if column.ndim > 1:  # a per-class model's rows: a list of probabilities each
            return [[float(str(value)) for value in row] for row in column]
        return [float(str(value)) for value in column]  # numpy prints a float32 by its shortest repr
    return column.tolist()


def new_request_id() -> str:
    return uuid.uuid4().hex


def _ids(body: bytes | None, id_column: str, count: int, rows: np.ndarray | None) -> list | None:
    """The id column's values of a REST JSON body (row or columnar form), for these rows; None if it has none."""
    if not body or not id_column:
        return None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("instances"), list):
        values = [row.get(id_column) if isinstance(row, dict) else None for row in payload["instances"]]
    elif isinstance(payload.get("inputs"), dict) and isinstance(payload["inputs"].get(id_column), list):
        values = payload["inputs"][id_column]
    else:
        return None
    if rows is not None:
        values = [values[i] if i < len(values) else None for i in rows.tolist()]
    return values if len(values) == count else None
