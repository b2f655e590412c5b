"""Where a trial runs: a slot runs one trial at a time and raises HostLost when its host cannot.

    from netfab.tune.slots import local_workers
    slots = local_workers(2)             # two local processes; netfab.tune.ssh_hosts has SSH slots

A slot's `run(spec, index)` returns once trials/NNNN/trial.json exists (a failed training is a
recorded trial, not a lost host).
"""
import dataclasses
import os
import subprocess
import sys

from netfab.environment import PROJECT_ROOT
from netfab.errors import NetfabError
from netfab.tune.study import TRIAL_RECORD, StudySpec
from netfab.tune.trial_runner import die_with_parent


class HostLost(Exception):
    """The slot's host could not run the trial (unreachable, dropped, broken install)."""


@dataclasses.dataclass
class LocalSlot:
    """One trial at a time in a local process."""

    name: str
    host: str = "localhost"

    def run(self, spec: StudySpec, index: int) -> None:
        done = subprocess.run([sys.executable, "-m", "netfab.tune.trial_runner", spec.folder,
                               "--index", str(index)], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                              preexec_fn=die_with_parent)  # a killed study leaves no runner behind
        if done.returncode != 0 or not (spec.trial_dir(index) / TRIAL_RECORD).exists():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise HostLost(f"the trial runner failed on this machine: {tail}")


def local_workers(parallel: int) -> list[LocalSlot]:
    if parallel < 1:
        raise NetfabError(f"--parallel={parallel}: needs at least 1 worker process")
    return [LocalSlot(f"local-{i}") for i in range(parallel)]
