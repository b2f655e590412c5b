"""`fab serve --workers=N`: N server processes on one port, so that N cores parse requests at once.

One Python process parses JSON and HTTP under one interpreter lock: on the 2-core benchmark
machine a single server is busy on that lock long before the model uses both cores
(benchmarks/serve.py). With --workers=N, `fab serve` forks N workers before TensorFlow is
imported. Each binds the port with SO_REUSEPORT (the kernel spreads connections across them),
loads its own copy of the model and batches its own requests.

The workers share a small folder, the group:

    worker-<i>.json   each worker's state, rewritten every PUBLISH_SECONDS: warm or not, the
                      generation it serves, its metrics
    state.json        what every worker should serve (models, labels, experiment) and its
                      generation (every /admin change)

so that /readyz is 200 only once every worker is warm, GET /metrics adds up all workers, and a
change of models sent to one worker reaches them all. The parent process only forwards SIGTERM and
SIGINT and waits. If a worker dies on its own, the parent stops the others and exits 1, so that
a supervisor (Kubernetes) restarts the whole server rather than running it short of a worker.
"""
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from netfab.errors import NetfabError
from netfab.storage import write_json_atomically

log = logging.getLogger(__name__)

PUBLISH_SECONDS = 0.5  # how stale another worker's metrics and state may be


@dataclasses.dataclass(frozen=True)
class WorkerGroup:
    """What one worker knows of the others: the shared folder, its own index, how many there are."""
    folder: Path
    index: int
    count: int

    def publish(self, state: dict) -> None:
        write_json_atomically(self.folder / f"worker-{self.index}.json", state)

    def states(self) -> list[dict]:
        """The last state each worker published (a worker that has not published yet is left out)."""
        states = []
        for index in range(self.count):
            try:
                states.append(json.loads((self.folder / f"worker-{index}.json").read_text()))
            except FileNotFoundError:
                pass
        return states

    def all_warm(self) -> bool:
        states = self.states()
        return len(states) == self.count and all(state["warm"] for state in states)

    def wanted_state(self) -> dict:
        """{"state", "generation"}: what every worker should serve (PredictionServer.state: zip URIs,
        labels, experiment); generation 0 is what they started with."""
        try:
            return json.loads((self.folder / "state.json").read_text())
        except FileNotFoundError:
            return {"state": None, "generation": 0}

    def want_state(self, state: dict) -> int:
        """Ask every worker to serve `state`; returns the new generation (one change after another)."""
        with open(self.folder / "state.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            generation = self.wanted_state()["generation"] + 1
            write_json_atomically(self.folder / "state.json", {"state": state, "generation": generation})
        return generation


def run_workers(run_server, model_uris, settings) -> None:
    """Fork settings.workers processes that each call run_server(model_uris, settings, group) on
    settings.port; forward SIGTERM/SIGINT to them and wait for all."""
    if not settings.port:
        raise NetfabError("--workers needs a fixed --port: the workers share it (SO_REUSEPORT)")
    if "tensorflow" in sys.modules:  # TensorFlow's threads and state do not survive a fork
        raise NetfabError("fab serve --workers forks its workers before TensorFlow loads, but this process "
                          "has imported TensorFlow already: start it from a fresh process, or use --workers=1")
    folder = Path(tempfile.mkdtemp(prefix="netfab-serve-group-"))
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False

    def forward(signum, frame):
        nonlocal stopping
        stopping = True
        for pid in children:
            os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(settings.workers):
        pid = os.fork()
        if pid == 0:  # the worker: its own signal handling (asyncio's) replaces the parent's
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os._exit(_worker(run_server, model_uris, settings, WorkerGroup(folder, index, settings.workers)))
        children[pid] = index
    log.info("%d workers on port %d: pids %s", settings.workers, settings.port, ", ".join(map(str, children)))
    failed = []
    try:
        while children:
            pid, status = os.wait()
            index, code = children.pop(pid), os.waitstatus_to_exitcode(status)
            if code or not stopping:  # ending on its own, even with 0, leaves the server short of a worker
                failed.append(index)
            if not stopping:
                log.error("worker %d (pid %d) exited with %d; stopping the others", index, pid, code)
                forward(signal.SIGTERM, None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if failed:
        raise NetfabError(f"fab serve: worker(s) {', '.join(map(str, sorted(failed)))} failed; "
                          f"the log above says why")


def _worker(run_server, model_uris, settings, group: WorkerGroup) -> int:
    """One worker's life; its exit code (never returns to the parent's code)."""
    try:
        run_server(model_uris, settings, group)
        return 0
    except NetfabError as error:
        log.error("worker %d: %s", group.index, error)
    except BaseException:  # a forked child must not unwind into the parent's code
        log.exception("worker %d failed", group.index)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 1
