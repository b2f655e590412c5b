"""`fab tune` on this machine: TPE with median pruning prunes trials, a stopped study resumes,
failures are recorded, the pictures are re-rendered from the storage, the k8s Job is valid.

Every trial is a real `fab train` in its own process on the bundled fixture, reporting to a real
Optuna storage (the default SQLite file in the study folder).
"""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from netfab.errors import NetfabError
from netfab.study_storage import open_storage
from netfab.tune.k8s_job import indexed_job
from netfab.tune.records import budget_spent, trial_records
from netfab.tune.run import new_study
from netfab.tune.study import StudySpec, load_optuna_study, read_spec
from tests.helpers import PROJECT, fab_command, run_fab, user_env

FAST = {"NET_EPOCHS": "1"}
# Learning rates from hopeless to good: the median pruner has trials to stop.
PRUNABLE_SPACE = {"learning_rate": {"log_uniform": [0.00001, 0.03]}, "dropout": {"uniform": [0.0, 0.4]}}


def write_space(tmp_path, space) -> str:
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    return str(path)


def study_records(folder) -> dict[int, dict]:
    spec = read_spec(str(folder))
    return trial_records(load_optuna_study(spec, open_storage(spec.storage_url)).get_trials())


def spent(folder) -> int:
    spec = read_spec(str(folder))
    return budget_spent(load_optuna_study(spec, open_storage(spec.storage_url)).get_trials())


@pytest.mark.slow  # a study of six trainings
def test_tpe_with_median_pruning_prunes_trials_and_chooses_the_best_on_validation(tmp_path):
    epochs = 4
    args = ("tune", f"--space={write_space(tmp_path, PRUNABLE_SPACE)}", "--trials=6", "--study=p",
            f"--output={tmp_path}", "--sampler=tpe", "--pruner=median", "--startup-trials=2")
    result = run_fab(*args, env={"NET_EPOCHS": str(epochs), "NET_BATCH_SIZE": "64"})
    assert result.returncode == 0, result.stderr[-3000:]
    study = tmp_path / "p"
    records = study_records(study)
    assert sorted(records) == list(range(6))
    pruned = [r for r in records.values() if r["status"] == "pruned"]
    ok = [r for r in records.values() if r["status"] == "ok"]
    assert pruned and len(ok) >= 2, [(r["trial"], r["status"], r["curve"]) for r in records.values()]
    for record in pruned:  # recorded: its epochs and curve; cleaned: only its log is left
        assert 1 <= record["epochs"] < epochs and len(record["curve"]) == record["epochs"]
        assert f"trial {record['trial']} pruned after epoch {record['epochs']}" in result.stdout
        folder = study / f"trials/{record['trial']:04d}"
        assert [p.name for p in folder.iterdir()] == ["log.txt"]
        assert "trial pruned by its study after epoch" in (folder / "log.txt").read_text()
    for record in ok:
        assert record["epochs"] == epochs and Path(record["zip_uri"]).is_file()
    # Chosen on validation: the summary's best is the highest validation AUC, whatever test says.
    best = max(ok, key=lambda r: r["validation_auc"])
    assert (f"best trial {best['trial']}: validation AUC {best['validation_auc']:.4f}, "
            f"test AUC {best['test_auc']:.4f}") in result.stdout
    board = (study / "leaderboard.csv").read_text().splitlines()
    assert board[1].split(",")[:2] == ["1", str(best["trial"])]
    assert sum(",pruned," in row for row in board) == len(pruned)
    pictures = ("study.png", "history.png", "importances.png", "curves.png")
    assert all((study / name).stat().st_size > 10_000 for name in pictures)

    # fab tune --report draws it all again from the storage alone.
    for name in (*pictures, "leaderboard.csv"):
        (study / name).unlink()
    again = run_fab("tune", "--report", "--study=p", f"--output={tmp_path}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert (study / "leaderboard.csv").read_text().splitlines() == board
    assert all((study / name).stat().st_size > 10_000 for name in pictures)
    assert f"best trial {best['trial']}" in again.stdout


@pytest.mark.slow  # a study of several trainings, stopped and run again
def test_a_stopped_study_resumes_and_keeps_failed_and_finished_trials(tmp_path):
    # numeric_columns with a column the dataset lacks: that trial fails inside `fab train`.
    space = write_space(tmp_path, {"numeric_columns": [["price", "rating"], ["price", "no_such_column"]],
                                   "learning_rate": {"log_uniform": [0.001, 0.01]}})
    args = ("tune", f"--space={space}", "--trials=3", "--study=s", f"--output={tmp_path}",
            "--seed=1", "--max-failures=3", "--pruner=none", "--heartbeat=2")
    env = {"NET_EPOCHS": "3"}
    study = tmp_path / "s"
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(fab_command(*args), cwd=PROJECT, env=user_env(env), stdout=log,
                                 stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and first.poll() is None:  # stop it mid-trial
            time.sleep(0.5)
            if (study / "study.db").exists() and any(
                    r["status"] == "running" and r["epochs"] >= 1 for r in study_records(study).values()):
                break
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # its worker gives the trial back as it stops its training
        stopped = study_records(study)
        given_back = [r for r in stopped.values() if r["status"] == "lost"]
        # the worker fails the trial, then queues its retry: two writes, so wait for the second
        if given_back and all(r["retried_as"] is not None for r in given_back):
            break
        time.sleep(0.5)
    assert len(given_back) == 1, (tmp_path / "first.log").read_text()[-2000:]
    assert stopped[given_back[0]["retried_as"]]["status"] == "waiting"  # queued again at once

    result = run_fab(*args, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"study s: {len(stopped)} trial(s) in the storage, resuming" in result.stdout
    records = study_records(study)
    lost = records[given_back[0]["trial"]]
    rerun = records[lost["retried_as"]]  # the stopped trial ran again, in its own folder, resumed
    assert rerun["values"] == lost["values"] and rerun["folder"] == lost["folder"]
    assert rerun["status"] in ("ok", "failed") and rerun["curve"][:1] == lost["curve"][:1]
    assert spent(study) == 3  # the budget: the lost trial counts once, as its rerun
    for number, record in stopped.items():  # trials finished before the stop were kept as they were
        if record["status"] in ("ok", "failed"):
            assert records[number]["validation_auc"] == record["validation_auc"]
    failed = [r for r in records.values() if r["status"] == "failed"]
    assert failed and all("no_such_column" in r["error"] for r in failed), failed
    assert any(r["status"] == "ok" for r in records.values())
    board = (study / "leaderboard.csv").read_text()
    assert board.count("\n") == len(records) + 1 and "failed" in board and "no_such_column" in board
    assert "lost" in board and "best trial" in result.stdout


@pytest.mark.slow  # two failing trainings
def test_consecutive_failures_stop_the_study(tmp_path):
    result = run_fab("tune", f"--dataset={tmp_path / 'missing.json'}", "--trials=5",
                     f"--output={tmp_path}", "--max-failures=2", env=FAST)
    assert result.returncode == 1
    assert "2 trials failed in a row (--max-failures=2)" in result.stderr
    assert "missing.json does not exist" in result.stderr
    records = study_records(tmp_path / "deep_v1-seed0")
    assert len(records) == 2 and {r["status"] for r in records.values()} == {"failed"}


def test_a_worker_with_only_the_spec_in_its_environment_joins_the_study(tmp_path):
    """What a pod of the Indexed Job or an SSH host runs, here as a local process."""
    spec = new_study("deep_v1", str(tmp_path), "k", dataset=str(tmp_path / "missing.json"),
                     fixed_env=FAST)
    (tmp_path / "k" / "study.json").unlink()  # the pod sees no study.json, only $NETFAB_STUDY
    env = user_env({"NETFAB_STUDY": json.dumps(spec.to_json()), "NETFAB_WORKER": "pod-0"})
    done = subprocess.run([sys.executable, "-m", "netfab.tune.worker", spec.folder, "--trials", "1"],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "trial 0 FAILED: " in done.stdout and "missing.json does not exist" in done.stdout
    storage = open_storage(spec.storage_url)
    (trial,) = load_optuna_study(spec, storage).get_trials()
    assert trial.user_attrs["worker"] == "pod-0" and "missing.json" in trial.user_attrs["error"]


def test_k8s_indexed_job_is_a_valid_manifest_of_workers(tmp_path):
    result = run_fab("tune", "--trials=6", "--parallel=3", f"--output={tmp_path}",
                     "--storage=postgresql://tuner@db.example:5432/netfab",
                     f"--k8s={tmp_path / 'job.yaml'}", "--image=registry.example/netfab-gpu:1",
                     env=FAST)
    assert result.returncode == 0, result.stderr
    assert "Indexed Job tune-deep-v1-seed0 (3 workers on a study of 6 trials)" in result.stdout
    manifest = yaml.safe_load((tmp_path / "job.yaml").read_text())
    assert manifest["spec"]["completionMode"] == "Indexed"
    assert (manifest["spec"]["completions"], manifest["spec"]["parallelism"]) == (3, 3)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][2:6] == ["netfab.tune.worker", str(tmp_path / "deep_v1-seed0"), "--trials", "6"]
    env = {e["name"]: e["value"] for e in container["env"]}
    spec = StudySpec(**json.loads(env["NETFAB_STUDY"]))
    assert spec.fixed_env == FAST and spec.storage.startswith("postgresql://")
    checked = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict",
                              str(tmp_path / "job.yaml")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_pods_refuse_the_default_sqlite_storage_they_cannot_reach(tmp_path):
    result = run_fab("tune", "--trials=6", f"--output={tmp_path}", f"--k8s={tmp_path / 'job.yaml'}")
    assert result.returncode == 1
    assert "give --storage=postgresql://... that the pods reach" in result.stderr
    assert not (tmp_path / "job.yaml").exists()


def test_manifest_refuses_zero_trials():
    spec = StudySpec("s", "deep_v1", "d", "/tmp/s", 0, "f", {"dropout": [0.1]}, {},
                     storage="postgresql://db/x")
    with pytest.raises(NetfabError, match="needs --trials >= 1"):
        indexed_job(spec, 0, "img")


def test_fab_k8s_writes_the_study_indexed_job_beside_the_serving_manifests(tmp_path):
    new_study("deep_v1", str(tmp_path), "s", seed=0, storage="postgresql://tuner@db/netfab")
    result = run_fab("k8s", "--model=gs://bucket/m/model.zip", f"--output={tmp_path / 'k8s'}",
                     f"--study={tmp_path / 's'}", "--trials=4", "--parallel=2")
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load((tmp_path / "k8s" / "04-tune-job.yaml").read_text())
    assert (manifest["spec"]["completions"], manifest["spec"]["parallelism"]) == (2, 2)
    assert manifest["spec"]["template"]["spec"]["containers"][0]["workingDir"] == "/app"
    checked = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict",
                              *map(str, sorted((tmp_path / "k8s").glob("*.yaml")))],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_hosts_need_a_storage_every_host_reaches(tmp_path):
    result = run_fab("-H", "127.0.0.1:1", "tune", "--trials=1", f"--output={tmp_path}")
    assert result.returncode == 1
    assert "fab -H ... tune needs --storage=postgresql://" in result.stderr
