"""`fab tune`: an Optuna study whose trials are `fab train` runs, on workers that share its storage.

    from netfab.tune.run import new_study, run_study, report_study
    from netfab.tune.local_workers import local_workers
    spec = new_study("deep_v1", output="studies", study="lr", seed=0, sampler="tpe", pruner="median")
    report = run_study(spec, trials=10, workers=local_workers(2))
    print(report.summary)
    print(report_study("studies/lr"))  # fab tune --report: leaderboard and pictures from the storage

Workers are local processes (`--parallel=N`), one per GPU on SSH hosts (netfab.tune.ssh_hosts)
or the pods of an Indexed Job (netfab.tune.k8s_job); each runs `python -m netfab.tune.worker`,
which asks the study for trials until it holds `trials` (netfab/tune/worker.py). This process
starts the workers, shows the study's progress as the storage records it, and writes the
leaderboard and pictures at the end. Running the same command again resumes the study; a worker
started elsewhere joins it.
"""
import dataclasses
import logging
import os
import threading
import time

from netfab.environment import PROJECT_ROOT
from netfab.errors import ConfigError, NetfabError
from netfab.study_storage import open_storage
from netfab.tune.records import trial_records
from netfab.tune.search_space import load_space
from netfab.tune.study import FIXTURE_DATASET, StudySpec, load_optuna_study, open_study, read_spec
from netfab.tune.worker import HEARTBEAT_SECONDS, STOPPED_FOR_FAILURES

log = logging.getLogger(__name__)
WATCH_SECONDS = 2.0  # how often the study's progress is read from the storage


def choose_workers(hosts: list[str], connect_kwargs: dict, parallel: int, remote_dir: str | None,
                   remote_python: str, gpus_per_host: int | None) -> list:
    """Workers on the SSH `hosts` (fab -H), or `parallel` local processes when there are none."""
    if not hosts:
        from netfab.tune.local_workers import local_workers

        return local_workers(parallel)
    from netfab.tune.ssh_hosts import ssh_workers

    return ssh_workers(hosts, connect_kwargs, remote_dir or str(PROJECT_ROOT), remote_python,
                       gpus_per_host)


@dataclasses.dataclass
class StudyReport:
    spec: StudySpec
    records: dict  # {trial number: record}, every trial of the study (netfab.tune.records)
    summary: str


def new_study(variant: str, output: str = "studies", study: str | None = None, seed: int = 0,
              space: str | None = None, dataset: str | None = None, fixed_env=None,
              sampler: str = "tpe", pruner: str = "median", storage: str = "",
              startup_trials: int = 5) -> StudySpec:
    """Create the study folder <output>/<study>, or resume the study already there."""
    fixed_env = dict(sorted((fixed_env or {}).items()))
    loaded = load_space(variant, space, fixed_env)
    if startup_trials < 1:
        raise ConfigError(f"--startup-trials={startup_trials}: needs at least 1")
    name = study or f"{variant}-seed{seed}"
    spec = StudySpec(name=name, variant=variant, dataset=_absolute(dataset) if dataset else FIXTURE_DATASET,
                     folder=os.path.abspath(f"{output.rstrip('/')}/{name}"), seed=seed,
                     space_file=loaded.source, space=loaded.raw, fixed_env=fixed_env,
                     sampler=sampler, pruner=pruner, startup_trials=startup_trials, storage=storage)
    return open_study(spec)


def run_study(spec: StudySpec, trials: int, workers: list, max_failures: int = 3,
              heartbeat: int = HEARTBEAT_SECONDS, progress=print) -> StudyReport:
    """Run `workers` on the study until it holds `trials` trials; the leaderboard and pictures."""
    if trials < 1:
        raise NetfabError(f"--trials={trials}: a study needs at least 1 trial")
    if heartbeat < 1:
        raise NetfabError(f"--heartbeat={heartbeat}: needs at least 1 second")
    study = load_optuna_study(spec, open_storage(spec.storage_url))
    before = trial_records(study.get_trials(deepcopy=False))
    if before:
        progress(f"study {spec.name}: {len(before)} trial(s) in the storage, resuming")
    args = ["--trials", str(trials), "--heartbeat", str(heartbeat), "--max-failures", str(max_failures)]
    outcomes: dict[str, tuple[int | None, str]] = {}
    threads = [threading.Thread(target=_run_worker, args=(w, spec, args, outcomes, progress), daemon=True)
               for w in workers]
    for thread in threads:
        thread.start()
    watch = _Watch(study, trials, progress, seen=before)
    while any(t.is_alive() for t in threads):
        time.sleep(WATCH_SECONDS)
        watch.show()
    watch.show()

    from netfab.tune.report import render

    summary = render(spec, study)
    records = trial_records(study.get_trials(deepcopy=False))
    codes = [code for code, _ in outcomes.values()]
    if STOPPED_FOR_FAILURES in codes:
        stopped = next(tail for code, tail in outcomes.values() if code == STOPPED_FOR_FAILURES)
        raise NetfabError(f"{stopped}\n{summary}")
    if not any(code == 0 for code in codes):
        lost = "; ".join(f"{name}: {tail}" for name, (code, tail) in outcomes.items())
        raise NetfabError(f"study {spec.name} stopped before its {trials} trials (no worker "
                          f"finished: {lost}); fix the hosts and run the same command again to "
                          f"resume\n{summary}")
    return StudyReport(spec, records, summary)


def report_study(folder: str) -> str:
    """fab tune --report: the leaderboard and every picture again, from the storage alone."""
    from netfab.tune.report import render

    spec = read_spec(os.path.abspath(folder))
    return render(spec, load_optuna_study(spec, open_storage(spec.storage_url)))


def _run_worker(worker, spec, args, outcomes, progress) -> None:
    from netfab.tune.ssh_hosts import HostLost

    try:
        code, output = worker.run(spec, args)
    except HostLost as error:
        outcomes[worker.name] = (None, str(error))
        progress(f"host {worker.host} dropped out ({error}); its trial goes to the other workers")
        return
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    tail = lines[-1] if lines else "no output"
    outcomes[worker.name] = (code, tail)
    if code not in (0, STOPPED_FOR_FAILURES):
        progress(f"worker {worker.name} on {worker.host} stopped (exit {code}: {tail[-300:]}); "
                 f"its trial goes to the other workers")


class _Watch:
    """Shows what the storage records as it happens: trials started, epochs, outcomes."""

    def __init__(self, study, trials: int, progress, seen: dict):
        self.study, self.trials, self.progress = study, trials, progress
        self.started = set(seen)  # trials whose start was shown (or that were there before)
        self.epochs = {n: r["epochs"] for n, r in seen.items()}
        self.status = {n: r["status"] for n, r in seen.items()}

    def show(self) -> None:
        records = trial_records(self.study.get_trials(deepcopy=False))
        done = sum(1 for r in records.values() if r["status"] in ("ok", "pruned", "failed"))
        for number, record in sorted(records.items()):
            # A queued retry carries its lost trial's values and worker: shown once a worker takes it.
            if number not in self.started and record["status"] != "waiting" and record["values"]:
                self.started.add(number)
                values = ", ".join(f"{k}={v}" for k, v in record["values"].items())
                self.progress(f"trial {number} on {record['worker']}: {values}")
            for epoch in range(self.epochs.get(number, 0), record["epochs"]):
                self.progress(f"  trial {number}: epoch {epoch + 1} validation AUC {record['curve'][epoch]:.4f}")
            self.epochs[number] = record["epochs"]
            if record["status"] != self.status.get(number) and record["status"] not in ("running", "waiting"):
                self.progress(f"[{done}/{self.trials}] " + _outcome(record))
            self.status[number] = record["status"]


def _outcome(record: dict) -> str:
    number, status = record["trial"], record["status"]
    seconds = f" ({record['seconds']:.0f} s)" if record["seconds"] is not None else ""
    if status == "ok":
        return (f"trial {number}: validation AUC {record['validation_auc']:.4f}, "
                f"test AUC {record['test_auc']:.4f}{seconds}")
    if status == "pruned":
        return (f"trial {number} pruned after epoch {record['epochs']} "
                f"(validation AUC {record['curve'][-1]:.4f}){seconds}")
    return f"trial {number} {status.upper()}: {record['error']}"


def _absolute(uri: str) -> str:
    return uri if "://" in uri else os.path.abspath(uri)
