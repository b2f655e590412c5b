"""A tuning worker: asks the study for a trial, runs it as a `fab train` in its own process, tells
the study the outcome, and again, until the study holds --trials trials. Every launcher runs it.

    python -m netfab.tune.worker /shared/studies/lr --trials 20          # study.json in the folder
    NETFAB_STUDY='{...}' python -m netfab.tune.worker /shared/studies/lr --trials 20   # a pod, a host

Run it from the project checkout (netfab importable, fabfile.py in the working directory). Any
number of workers, on any hosts, join the same study through its storage; a worker started
mid-study takes the next trial. A trial is
`NET_<KEY>=<value> … fab train --variant=V --dataset=D --output=<study>/trials/NNNN` in a child
process forked from a server that imported TensorFlow once (netfab/tune/trial_process.py), with
NETFAB_TRIAL_* naming the study and the trial so that the run reports its validation AUC after
every epoch and stops when pruned (netfab/train/trial_reporting.py). The worker beats the
trial's heartbeat meanwhile: a worker that dies leaves a trial that the storage fails after two
missed beats and Optuna's RetryHeartbeatStaleTrialCallback queues again, with its curve, for
any worker (it resumes from the last epoch checkpoint when it lands on a host that sees the folder).
A worker that is stopped (SIGTERM, Ctrl-C) gives its trial back at once.

Exit code 0 when the budget is spent and nothing is left running; 3 when --max-failures trials
failed in a row (the last line says so).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import sys
import time
import warnings

from netfab.environment import PROJECT_ROOT
from netfab.study_storage import ENV_STORAGE, ENV_STUDY, ENV_TRIAL_ID, open_storage
from netfab.tune.records import budget_spent, failures_in_a_row, first_of_retries, retry_callback
from netfab.tune.study import StudySpec, ask_trial, load_optuna_study, read_spec
from netfab.tune.trial_process import TrialLauncher, stop

RESULT_FILE = "result.json"  # what `fab train --result` writes for the trial
ENV_WORKER = "NETFAB_WORKER"  # the name a launcher gives this worker (local-0, gpu1/gpu0), recorded per trial
HEARTBEAT_SECONDS = 60  # a trial is failed and queued again after two beats missed
MAX_RETRIES = 3  # times a lost trial runs again before it stays lost
STOPPED_FOR_FAILURES = 3  # exit code


def work(spec: StudySpec, trials: int, heartbeat: int = HEARTBEAT_SECONDS, max_failures: int = 3,
         progress=print) -> int:
    """Run trials of the study until it holds `trials`; the exit code (see the module's doc)."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    retry = retry_callback(MAX_RETRIES)
    storage = open_storage(spec.storage_url, heartbeat, retry)
    study = load_optuna_study(spec, storage)
    launcher = TrialLauncher()
    while True:
        fail_stale_trials(study)  # trials of dead workers: failed, and queued again
        existing = study.get_trials(deepcopy=False)
        if failures_in_a_row(existing) >= max_failures:
            progress(f"study {spec.name} stopped: {failures_in_a_row(existing)} trials failed in a "
                     f"row (--max-failures={max_failures}); see trials/*/log.txt, fix the cause and "
                     f"run the same command again to resume")
            return STOPPED_FOR_FAILURES
        waiting = any(t.state == TrialState.WAITING for t in existing)
        if not waiting and budget_spent(existing) >= trials:
            if any(t.state == TrialState.RUNNING for t in existing):
                time.sleep(min(heartbeat, 5))  # a running trial may yet be lost and come back
                continue
            return 0
        trial = ask_trial(study, spec)
        run_trial(spec, study, trial, storage, heartbeat, retry, progress, launcher)


def run_trial(spec, study, trial, storage, heartbeat, retry, progress, launcher) -> None:
    from optuna.trial import TrialState

    trial_id = trial._trial_id  # Optuna's id for the trial; its public API has only the number
    storage.record_heartbeat(trial_id)  # from now on a dead worker's trial is found stale
    first = first_of_retries(storage.get_trial(trial_id))
    folder = spec.trial_dir(trial.number if first is None else first)  # a retry resumes its run
    folder.mkdir(parents=True, exist_ok=True)
    values = spec.search_space().decode(trial.params)
    attrs = {"values": values, "folder": str(folder), "command": spec.trial_command(values, folder),
             "worker": os.environ.get(ENV_WORKER) or socket.gethostname(),
             "host": socket.gethostname(), "gpu": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    progress(f"trial {trial.number}: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items())
             + (f" (trial {first} again)" if first is not None else ""))

    env = {k: v for k, v in os.environ.items() if not k.startswith("NET_")}
    env.update(spec.trial_env(values))
    env.update({ENV_STORAGE: spec.storage_url, ENV_STUDY: spec.name, ENV_TRIAL_ID: str(trial_id),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))})
    result_file = folder / RESULT_FILE
    result_file.unlink(missing_ok=True)  # a rerun of the trial must not read an earlier run's result
    started = time.monotonic()
    child = None
    try:
        child = launcher.start([*spec.trial_args(folder), f"--result={result_file}"], env, PROJECT_ROOT,
                               folder / "log.txt")
        while child.exitcode is None:
            storage.record_heartbeat(trial_id)
            child.join(heartbeat)
        returncode = child.exitcode
    except BaseException:  # stopped (SIGTERM, Ctrl-C): the trial goes back to the study now
        stop(child)
        study.tell(trial, state=TrialState.FAIL)
        retry(study, storage.get_trial(trial_id))
        raise
    seconds = round(time.monotonic() - started, 1)
    trial.set_user_attr("seconds", seconds)
    result = json.loads(result_file.read_text()) if returncode == 0 and result_file.is_file() else None
    if result and result.get("pruned"):
        # fab train removed its run; what is left of the folder is log.txt, which says why
        shutil.rmtree(folder / spec.variant, ignore_errors=True)
        result_file.unlink()
        study.tell(trial, state=TrialState.PRUNED)
        progress(f"trial {trial.number} pruned after epoch {result['pruned']['epoch']} "
                 f"(validation AUC {result['pruned']['validation_auc']:.4f}, {seconds:.0f} s)")
    elif result:
        metrics = result["metrics"]
        for key in ("validation_loss", "test_auc", "test_loss", "best_epoch"):
            trial.set_user_attr(key, metrics[key])
        trial.set_user_attr("train_seconds", metrics["seconds"])
        trial.set_user_attr("zip_uri", result["zip_uri"])
        study.tell(trial, metrics["validation_auc"])  # chosen on validation, never on test
        progress(f"trial {trial.number}: validation AUC {metrics['validation_auc']:.4f}, "
                 f"test AUC {metrics['test_auc']:.4f} ({seconds:.0f} s)")
    else:
        error = _error_line((folder / "log.txt").read_text(errors="replace"), returncode)
        trial.set_user_attr("error", error)
        study.tell(trial, state=TrialState.FAIL)
        progress(f"trial {trial.number} FAILED: {error}")


def _error_line(output: str, returncode: int) -> str:
    """The trial's own `error: …` line if it printed one, else its last line and exit code."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1][len("error:"):].strip()
    return f"exit code {returncode}: {lines[-1] if lines else 'no output'}"[:500]


def _stop(signum, frame) -> None:
    # A stop can arrive twice (seen when fab tune is killed): the first one unwinds,
    # and the trial must be given back whole, not interrupted by the next.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.exit(128 + signum)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", help="the study folder (as this host sees it)")
    parser.add_argument("--trials", type=int, required=True, help="the study's trial budget")
    parser.add_argument("--heartbeat", type=int, default=HEARTBEAT_SECONDS,
                        help=f"seconds between a trial's heartbeats (default {HEARTBEAT_SECONDS})")
    parser.add_argument("--max-failures", type=int, default=3,
                        help="stop after this many failed trials in a row (default 3)")
    args = parser.parse_args(argv)
    # Heartbeats and stale-trial retries are marked experimental since Optuna 2.8/2.9, and are
    # meant for Study.optimize; this worker beats each trial's heartbeat itself (run_trial).
    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    if os.environ.get("NETFAB_STUDY"):
        spec = StudySpec(**json.loads(os.environ["NETFAB_STUDY"]))
    else:
        spec = read_spec(args.study)
    # SIGTERM (kill, a pod's end, fab tune stopping) and SIGHUP (its SSH session gone) unwind
    # like Ctrl-C: the trial is given back to the study at once.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    try:
        return work(spec, args.trials, args.heartbeat, args.max_failures,
                    progress=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
