"""`fab tune` on this machine: failures are recorded, a killed study resumes, the k8s Job is valid.

Every trial is a real `fab train` in its own process on the bundled fixture, with one epoch.
"""
import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from netfab.errors import NetfabError
from netfab.tune.study import StudySpec
from netfab.tune.k8s_job import indexed_job
from netfab.tune.run import new_study
from tests.helpers import PROJECT, fab_command, run_fab, user_env

FAST = {"NET_EPOCHS": "1"}


def write_space(tmp_path, space) -> str:
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    return str(path)


def records_of(study) -> dict[int, dict]:
    return {int(p.parent.name): json.loads(p.read_text()) for p in study.glob("trials/*/trial.json")}


@pytest.mark.slow  # a study of several trainings
def test_a_killed_study_resumes_and_keeps_failed_and_finished_trials(tmp_path):
    # numeric_columns with a column the dataset lacks: that trial fails inside `fab train`.
    space = write_space(tmp_path, {"numeric_columns": [["price", "rating"], ["price", "no_such_column"]],
                                   "learning_rate": {"log_uniform": [0.001, 0.01]}})
    args = ("tune", f"--space={space}", "--trials=3", "--study=s", f"--output={tmp_path}",
            "--seed=1", "--max-failures=3")
    study = tmp_path / "s"
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(fab_command(*args), cwd=PROJECT, env=user_env(FAST), stdout=log,
                                 stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not records_of(study) and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.5)
        first.send_signal(signal.SIGTERM)  # the study dies between trials or mid-trial
        first.wait(timeout=60)
    kept = records_of(study)
    assert kept and len(kept) < 3, (tmp_path / "first.log").read_text()[-2000:]
    kept_times = {i: (study / f"trials/{i:04d}/trial.json").stat().st_mtime for i in kept}

    result = run_fab(*args, env=FAST)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{len(kept)} trial(s) already finished, {3 - len(kept)} to run" in result.stdout
    records = records_of(study)
    assert sorted(records) == [0, 1, 2]
    assert {i: (study / f"trials/{i:04d}/trial.json").stat().st_mtime for i in kept} == kept_times
    failed = [r for r in records.values() if r["status"] == "failed"]
    assert failed and all("no_such_column" in r["error"] for r in failed), failed
    assert any(r["status"] == "ok" for r in records.values())
    board = (study / "leaderboard.csv").read_text()
    assert board.count("\n") == 4 and "failed" in board and "no_such_column" in board
    assert "failed: " in result.stdout and "best trial" in result.stdout
    assert board.splitlines()[0].split(",")[4:6] == ["validation_auc", "validation_loss"]  # what ranks
    ok = [r for r in records.values() if r["status"] == "ok" and r["trial"] not in kept]
    for record in ok:  # each trial's epochs were shown as they finished
        assert f"trial {record['trial']}: epoch 1/1 done in" in result.stdout, result.stdout[-3000:]


@pytest.mark.slow  # a study of several trainings
def test_consecutive_failures_stop_the_study(tmp_path):
    result = run_fab("tune", f"--dataset={tmp_path / 'missing.json'}", "--trials=5",
                     f"--output={tmp_path}", "--max-failures=2", env=FAST)
    assert result.returncode == 1
    assert "2 trials failed in a row (--max-failures=2)" in result.stderr
    assert "missing.json does not exist" in result.stderr
    assert len(records_of(tmp_path / "deep_v1-seed0")) == 2


def test_a_study_refuses_to_resume_with_other_settings(tmp_path):
    new_study("deep_v1", str(tmp_path), "s", seed=0)
    with pytest.raises(NetfabError, match="study 's' .* was started with different settings \\(seed: 0 there, 1 now\\)"):
        new_study("deep_v1", str(tmp_path), "s", seed=1)


def test_k8s_indexed_job_is_a_valid_manifest(tmp_path):
    result = run_fab("tune", "--trials=6", "--parallel=3", f"--output={tmp_path}",
                     f"--k8s={tmp_path / 'job.yaml'}", "--image=registry.example/netfab-gpu:1",
                     env=FAST)
    assert result.returncode == 0, result.stderr
    assert "Indexed Job tune-deep-v1-seed0 (6 trials, 3 at a time)" in result.stdout
    manifest = yaml.safe_load((tmp_path / "job.yaml").read_text())
    assert manifest["spec"]["completionMode"] == "Indexed"
    assert (manifest["spec"]["completions"], manifest["spec"]["parallelism"]) == (6, 3)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-1] == str(tmp_path / "deep_v1-seed0")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert StudySpec(**json.loads(env["NETFAB_STUDY"])).fixed_env == FAST
    checked = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict",
                              str(tmp_path / "job.yaml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_trial_runner_takes_its_index_from_job_completion_index(tmp_path):
    """What a pod of the Indexed Job runs, here as a local process."""
    spec = new_study("deep_v1", str(tmp_path), "k", dataset=str(tmp_path / "missing.json"),
                     fixed_env=FAST)
    env = user_env({"JOB_COMPLETION_INDEX": "4", "NETFAB_STUDY": json.dumps(spec.to_json())})
    done = subprocess.run([sys.executable, "-m", "netfab.tune.trial_runner", spec.folder], cwd=PROJECT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert (record["trial"], record["status"]) == (4, "failed")
    assert record["values"] == spec.trial_values(4)
    assert (tmp_path / "k/trials/0004/trial.json").exists()


def test_manifest_refuses_zero_trials():
    spec = StudySpec("s", "deep_v1", "d", "/tmp/s", 0, "f", {"dropout": [0.1]}, {})
    with pytest.raises(NetfabError, match="needs --trials >= 1"):
        indexed_job(spec, 0, "img")


def test_fab_k8s_writes_the_study_indexed_job_beside_the_serving_manifests(tmp_path):
    new_study("deep_v1", str(tmp_path), "s", seed=0)
    result = run_fab("k8s", "--model=gs://bucket/m/model.zip", f"--output={tmp_path / 'k8s'}",
                     f"--study={tmp_path / 's'}", "--trials=4", "--parallel=2")
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load((tmp_path / "k8s" / "04-tune-job.yaml").read_text())
    assert (manifest["spec"]["completions"], manifest["spec"]["parallelism"]) == (4, 2)
    assert manifest["spec"]["template"]["spec"]["containers"][0]["workingDir"] == "/app"
    checked = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict",
                              *map(str, sorted((tmp_path / "k8s").glob("*.yaml")))],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
