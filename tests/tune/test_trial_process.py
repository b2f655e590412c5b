"""A trial forked from the worker's fork server is a `fab` run of its own: its environment, folder,
log and exit code; it trains exactly as a fresh `fab train`; it does not outlive its worker.

Real processes throughout: the multiprocessing fork server, `fab` in its children, a worker killed
with SIGKILL.
"""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netfab.tune.trial_process import TrialLauncher
from tests.helpers import PROJECT, fab_command, user_env


def metrics_rows(output: Path) -> list[dict]:
    [path] = output.glob("deep_v1/*/metrics.csv")
    return list(csv.DictReader(path.open()))


def test_a_launched_trial_is_fab_with_its_own_environment_folder_log_and_exit_code(tmp_path):
    launcher = TrialLauncher()
    child = launcher.start(["config", "--variant=deep_v1"], user_env({"NET_EPOCHS": "3"}), PROJECT,
                           tmp_path / "ok.log")
    child.join(120)
    assert child.exitcode == 0 and child.pid != os.getpid()
    assert [line.split() for line in (tmp_path / "ok.log").read_text().splitlines()
            if line.split()[:1] == ["epochs"]] == [["epochs", "3", "env"]]
    assert "NET_EPOCHS" not in os.environ  # the trial's environment stayed in its process

    failing = launcher.start(["config", "--variant=nope"], user_env(), PROJECT, tmp_path / "bad.log")
    failing.join(120)
    assert failing.exitcode == 1
    assert "error: unknown variant 'nope'" in (tmp_path / "bad.log").read_text()


@pytest.mark.slow  # two short trainings
def test_a_forked_trial_trains_exactly_as_a_fresh_fab_train(tmp_path):
    # The fork server imported TensorFlow but never ran it: a child forked from it must train
    # bit for bit like a fresh interpreter (the runs are seeded and TensorFlow's ops deterministic).
    env = user_env({"NET_EPOCHS": "2", "NET_BATCH_SIZE": "64", "NET_LEARNING_RATE": "0.002"})
    args = ["train", "--variant=deep_v1", "--dataset=data/fixtures/sanity_2k.json"]
    fresh = subprocess.run(fab_command(*args, f"--output={tmp_path}/fresh"), cwd=PROJECT, env=env,
                           capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    child = TrialLauncher().start([*args, f"--output={tmp_path}/forked"], env, PROJECT, tmp_path / "log.txt")
    child.join(600)
    assert child.exitcode == 0, (tmp_path / "log.txt").read_text()[-2000:]
    columns = ("train_loss", "validation_auc", "test_auc")
    fresh_rows, forked_rows = metrics_rows(tmp_path / "fresh"), metrics_rows(tmp_path / "forked")
    assert len(forked_rows) == 2
    assert [[row[c] for c in columns] for row in forked_rows] == [[row[c] for c in columns] for row in fresh_rows]


WORKER = """
import os, sys, time
from netfab.tune.trial_process import TrialLauncher
if __name__ == "__main__":
    child = TrialLauncher().start(["train", "--variant=deep_v1", "--output=" + sys.argv[1]],
                                  dict(os.environ, NET_EPOCHS="500", NET_EARLY_STOPPING_PATIENCE="0"),
                                  sys.argv[2], sys.argv[3])
    print(child.pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.slow  # a training that runs until its worker is killed
def test_a_trial_does_not_outlive_its_worker(tmp_path):
    log = tmp_path / "log.txt"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(PROJECT), str(log)],
                              cwd=PROJECT, env=user_env(), stdout=subprocess.PIPE, text=True)
    trial_pid = int(worker.stdout.readline())
    deadline = time.monotonic() + 300
    while "epoch 1/500 done" not in (log.read_text() if log.exists() else ""):  # TensorFlow at work
        assert time.monotonic() < deadline and worker.poll() is None, log.read_text()[-2000:]
        time.sleep(0.5)
    worker.send_signal(signal.SIGKILL)  # no chance to stop its trial: the trial must stop itself
    worker.wait(timeout=30)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{trial_pid}").exists() and "Z" not in _state(trial_pid):
        assert time.monotonic() < deadline, f"trial {trial_pid} outlived its worker"
        time.sleep(0.2)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"
