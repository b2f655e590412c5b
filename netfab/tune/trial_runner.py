"""Run one trial of a study on this machine and record it: the entry point every host runs.

    python -m netfab.tune.trial_runner /shared/studies/lr --index 3
    JOB_COMPLETION_INDEX=3 python -m netfab.tune.trial_runner /shared/studies/lr     # a Kubernetes pod

Run it from the project checkout (netfab importable, fabfile.py in the working directory). It
starts the trial's reproduce command — `NET_<KEY>=<value> … fab train --variant=V
--dataset=D --output=<study>/trials/NNNN` — as its own process, so no memory is carried from
one trial to the next, with `--result=trials/NNNN/result.json` added so that the run hands back
its zip and metrics as a file; then it writes trials/NNNN/trial.json (status, values, metrics,
zip, command) atomically and prints it as one JSON line. A failed training is a recorded trial
(exit code 0); a non-zero exit means this machine could not run or record trials at all.

The study spec comes from <study>/study.json, or from $NETFAB_STUDY (the same JSON) when the
folder is not readable here, as in a Kubernetes pod that only writes to shared storage.
"""
import argparse
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from netfab.environment import PROJECT_ROOT
from netfab.storage import write_json_atomically
from netfab.tune.study import TRIAL_RECORD, StudySpec, read_spec

RESULT_FILE = "result.json"  # what `fab train --result` writes for the trial


def run_trial(spec: StudySpec, index: int) -> dict:
    """Train trial `index` in a child process and return (and write) its record."""
    trial_dir = spec.trial_dir(index)
    trial_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NET_")}
    env.update(spec.trial_env(index))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    result_file = (trial_dir / RESULT_FILE).resolve()  # the child runs in PROJECT_ROOT
    result_file.unlink(missing_ok=True)  # a rerun of the trial must not read an earlier run's result
    started = time.monotonic()
    with open(trial_dir / "log.txt", "w") as log:
        returncode = subprocess.run([_fab_executable(), *spec.trial_args(index), f"--result={result_file}"],
                                    cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, preexec_fn=die_with_parent).returncode
    output = (trial_dir / "log.txt").read_text(errors="replace")
    record = {"trial": index, "values": spec.trial_values(index), "status": "ok", "error": "",
              "validation_auc": None, "validation_loss": None, "test_auc": None, "test_loss": None,
              "best_epoch": None, "epochs": None,
              "seconds": round(time.monotonic() - started, 1), "train_seconds": None,
              "host": socket.gethostname(), "gpu": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
              "zip_uri": "", "command": spec.trial_command(index)}
    if returncode == 0 and result_file.is_file():
        result = json.loads(result_file.read_text())
        metrics = result["metrics"]
        record.update(zip_uri=result["zip_uri"], validation_auc=metrics["validation_auc"],
                      validation_loss=metrics["validation_loss"], test_auc=metrics["test_auc"],
                      test_loss=metrics["test_loss"],
                      best_epoch=metrics["best_epoch"], epochs=metrics["epochs_run"],
                      train_seconds=metrics["seconds"])
    else:
        record.update(status="failed", error=_error_line(output, returncode))
    write_json_atomically(trial_dir / TRIAL_RECORD, record)
    return record


def _error_line(output: str, returncode: int) -> str:
    """The trial's own `error: …` line if it printed one, else its last line and exit code."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1][len("error:"):].strip()
    return f"exit code {returncode}: {lines[-1] if lines else 'no output'}"[:500]


def _fab_executable() -> str:
    beside = Path(sys.executable).with_name("fab")
    return str(beside) if beside.exists() else "fab"


def die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the process (thread) that started it dies.

    A trial must not outlive whoever runs it: when the study or the runner is killed (Ctrl-C,
    SSH session gone, pod evicted), an orphaned trial would keep writing into a folder that the
    rerun of the same trial is about to use. PR_SET_PDEATHSIG = 1.
    """
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", help="the study folder (as the host sees it)")
    parser.add_argument("--index", type=int, default=None,
                        help="trial index (default: $JOB_COMPLETION_INDEX)")
    args = parser.parse_args(argv)
    index = args.index if args.index is not None else os.environ.get("JOB_COMPLETION_INDEX")
    if index is None:
        parser.error("give --index N or set JOB_COMPLETION_INDEX")
    if os.environ.get("NETFAB_STUDY"):
        spec = StudySpec(**json.loads(os.environ["NETFAB_STUDY"]))
    else:
        spec = read_spec(args.study)
    print(json.dumps(run_trial(spec, int(index))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
