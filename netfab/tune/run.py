"""`fab tune`: seeded random search, each trial a `fab train` in its own process, on workers.

    from netfab.tune.run import new_study, run_study
    from netfab.tune.slots import local_workers
    spec = new_study("deep_v1", trials_output="studies", study="lr", seed=0)
    report = run_study(spec, trials=10, workers=local_workers(2))
    print(report.summary)

Workers are slots that each run one trial at a time: local processes (`--parallel=N`) or one
slot per GPU on SSH hosts (netfab.tune.ssh_hosts). Every slot runs `python -m netfab.tune.trial_runner`
for a trial index; the runner records the trial in the study folder. A trial that fails is a
recorded trial and the study goes on, until `max_failures` fail in a row. A slot whose host
drops out gives its trial back, and the other slots run it. Finished trials (a trial.json) are
never run again, so running the same study again resumes it.
"""
import dataclasses
import logging
import os
import threading
import time
from pathlib import Path

from netfab import storage
from netfab.environment import PROJECT_ROOT
from netfab.errors import NetfabError
from netfab.tune.search_space import load_space
from netfab.tune.study import FIXTURE_DATASET, TRIAL_RECORD, StudySpec, open_study
from netfab.tune.report import plot_study, summarize, write_leaderboard
from netfab.tune.slots import HostLost, local_workers

log = logging.getLogger(__name__)


def choose_workers(hosts: list[str], connect_kwargs: dict, parallel: int, remote_dir: str | None,
                   remote_python: str, gpus_per_host: int | None) -> list:
    """Slots on the SSH `hosts` (fab -H), or `parallel` local processes when there are none."""
    if not hosts:
        return local_workers(parallel)
    from netfab.tune.ssh_hosts import ssh_workers

    return ssh_workers(hosts, connect_kwargs, remote_dir or str(PROJECT_ROOT), remote_python,
                       gpus_per_host)


@dataclasses.dataclass
class StudyReport:
    spec: StudySpec
    records: dict
    ran: int  # trials run by this call (a resume runs only the unfinished ones)
    summary: str


def new_study(variant: str, output: str = "studies", study: str | None = None, seed: int = 0,
              space: str | None = None, dataset: str | None = None, fixed_env=None) -> StudySpec:
    """Create the study folder <output>/<study>, or resume the study already there."""
    fixed_env = dict(sorted((fixed_env or {}).items()))
    loaded = load_space(variant, space, fixed_env)
    name = study or f"{variant}-seed{seed}"
    spec = StudySpec(name=name, variant=variant, dataset=_absolute(dataset) if dataset else FIXTURE_DATASET,
                     folder=_absolute(f"{output.rstrip('/')}/{name}"), seed=seed,
                     space_file=loaded.source, space=loaded.raw, fixed_env=fixed_env)
    return open_study(spec)


def run_study(spec: StudySpec, trials: int, workers: list, max_failures: int = 3,
              progress=print) -> StudyReport:
    """Run trials 0..trials-1 that have no record yet on `workers`; write the leaderboard."""
    if trials < 1:
        raise NetfabError(f"--trials={trials}: a study needs at least 1 trial")
    finished = spec.finished()
    pending = [i for i in range(trials) if i not in finished]
    if finished:
        progress(f"study {spec.name}: {len(finished)} trial(s) already finished, "
                 f"{len(pending)} to run")
    state = _Schedule(spec, pending, max_failures, progress, total=trials, done=len(finished))
    threads = [threading.Thread(target=state.work, args=(slot,), daemon=True) for slot in workers]
    state.echo = _EpochEcho(spec, state, progress)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state.echo.stop()

    records = spec.finished()
    write_leaderboard(spec, records)
    if any(r["status"] == "ok" for r in records.values()):
        plot_study(spec, records)
    summary = summarize(spec, records)
    if state.stopped_for:
        raise NetfabError(f"{state.stopped_for}\n{summary}")
    left = [i for i in range(trials) if i not in records]
    if left:
        lost = "; ".join(state.lost) or "no worker left"
        raise NetfabError(f"study {spec.name} stopped with {len(left)} trial(s) not run "
                          f"(every worker dropped out: {lost}); fix the hosts and run the same "
                          f"command again to resume\n{summary}")
    return StudyReport(spec, records, state.ran, summary)


class _Schedule:
    """Hands trial indices to slots; takes them back from a slot whose host dropped out."""

    def __init__(self, spec, pending, max_failures, progress, total, done):
        self.spec, self.pending, self.max_failures = spec, list(pending), max_failures
        self.progress, self.total, self.done = progress, total, done
        self.cond = threading.Condition()
        self.in_flight = 0
        self.failures_in_a_row = 0
        self.ran = 0
        self.stopped_for = ""
        self.dead_hosts: set[str] = set()
        self.lost: list[str] = []
        self.running: set[int] = set()  # trial indices on a slot now (their epochs are echoed)
        self.echo = None

    def _next(self, slot):
        with self.cond:
            while True:
                if self.stopped_for or slot.host in self.dead_hosts:
                    return None
                if self.pending:
                    index = self.pending.pop(0)
                    self.in_flight += 1
                    self.running.add(index)
                    return index
                if self.in_flight == 0:
                    return None
                self.cond.wait(timeout=1)  # a trial in flight may come back from a lost host

    def work(self, slot) -> None:
        while (index := self._next(slot)) is not None:
            started = time.monotonic()
            try:
                slot.run(self.spec, index)
            except HostLost as error:
                with self.cond:
                    self.in_flight -= 1
                    self.running.discard(index)
                    self.pending.insert(0, index)
                    if slot.host not in self.dead_hosts:
                        self.dead_hosts.add(slot.host)
                        self.lost.append(f"{slot.host}: {error}")
                        self.progress(f"host {slot.host} dropped out ({error}); its trials go "
                                      f"to the other workers")
                    self.cond.notify_all()
                return
            record = storage.local_path(self.spec.trial_dir(index) / TRIAL_RECORD)
            self._finished(slot, index, record, time.monotonic() - started)

    def _finished(self, slot, index, record_path, seconds):
        import json

        record = json.loads(Path(record_path).read_text())
        with self.cond:
            self.in_flight -= 1
            self.running.discard(index)
            if self.echo:
                self.echo.flush(index)  # the epochs that ended since its last look
            self.ran += 1
            self.done += 1
            if record["status"] == "ok":
                self.failures_in_a_row = 0
                outcome = f"validation AUC {record['validation_auc']:.4f}, test AUC {record['test_auc']:.4f}"
            else:
                self.failures_in_a_row += 1
                outcome = f"FAILED: {record['error']}"
                if self.failures_in_a_row >= self.max_failures:
                    self.stopped_for = (f"study {self.spec.name} stopped: {self.failures_in_a_row} "
                                        f"trials failed in a row (--max-failures={self.max_failures}); "
                                        f"see trials/*/log.txt, fix the cause and run the same "
                                        f"command again to resume")
            self.progress(f"[{self.done}/{self.total}] trial {index} on {slot.name}: {outcome} "
                          f"({seconds:.0f} s)")
            write_leaderboard(self.spec, self.spec.finished())
            self.cond.notify_all()


class _EpochEcho:
    """Shows each running trial's epochs as they finish: the `epoch N/M done …` lines of its log.txt."""

    EVERY_SECONDS = 2.0

    def __init__(self, spec: StudySpec, schedule: _Schedule, progress):
        self.spec, self.schedule, self.progress = spec, schedule, progress
        self.offsets: dict[int, int] = {}
        self.lock = threading.Lock()  # the watcher and a finishing trial may read the same log
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(self.EVERY_SECONDS):
            with self.schedule.cond:
                running = sorted(self.schedule.running)
            for index in running:
                self.flush(index)

    def flush(self, index: int) -> None:
        with self.lock:
            self._flush(index)

    def _flush(self, index: int) -> None:
        path = Path(storage.local_path(self.spec.trial_dir(index) / "log.txt"))
        try:
            with open(path, "rb") as log:
                if os.fstat(log.fileno()).st_size < self.offsets.get(index, 0):
                    self.offsets[index] = 0  # the trial runs again (its host was lost): a new log
                log.seek(self.offsets.get(index, 0))
                text = log.read()
        except FileNotFoundError:
            return
        complete = text[:text.rfind(b"\n") + 1]  # a line still being written waits for the next look
        self.offsets[index] = self.offsets.get(index, 0) + len(complete)
        for line in complete.decode(errors="replace").splitlines():
            if " epoch " in f" {line}" and " done in " in line:
                self.progress(f"  trial {index}: epoch {line.split('epoch ', 1)[1]}")


def _absolute(uri: str) -> str:
    return uri if "://" in uri else os.path.abspath(uri)
