"""Tuning workers on this machine: `--parallel=N` processes, each `python -m netfab.tune.worker`.

    from netfab.tune.local_workers import local_workers
    run_study(spec, trials=10, workers=local_workers(2))

A worker's output goes to <study>/workers/local-N.log; it ends with the process that started it.
"""
import ctypes
import dataclasses
import os
import signal
import subprocess
import sys

from netfab.environment import PROJECT_ROOT
from netfab.errors import NetfabError
from netfab.tune.worker import ENV_WORKER


@dataclasses.dataclass
class LocalWorker:
    name: str
    host: str = "localhost"

    def run(self, spec, worker_args: list[str]) -> tuple[int, str]:
        """Run the worker until it ends: its exit code and output."""
        log_path = os.path.join(spec.folder, "workers", f"{self.name}.log")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, "a") as log:
            code = subprocess.run([sys.executable, "-m", "netfab.tune.worker", spec.folder, *worker_args],
                                  cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL,
                                  env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), ENV_WORKER: self.name},
                                  preexec_fn=die_with_parent).returncode  # no worker outlives fab tune
        with open(log_path, errors="replace") as log:
            return code, log.read()


def die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the process (thread) that started it dies (PR_SET_PDEATHSIG = 1).
    A worker's trials watch the worker in turn (netfab/tune/trial_process.py)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def local_workers(parallel: int) -> list[LocalWorker]:
    if parallel < 1:
        raise NetfabError(f"--parallel={parallel}: needs at least 1 worker process")
    return [LocalWorker(f"local-{i}") for i in range(parallel)]
