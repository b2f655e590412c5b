"""Several workers on one study in a real PostgreSQL (tests/tune/postgres_server.py): two local
processes, a worker killed mid-trial and another added mid-study, and two SSH hosts (two sshd on
loopback, tests/tune/sshd_hosts.py) of which one drops out. Every trial is a real `fab train`.

What every test checks: each trial ran once (one training in its log, its own folder, its own
values), every trial of the study is accounted for (finished, or lost and run again under a
number that finished), and the budget is spent.
"""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netfab.study_storage import open_storage
from netfab.tune.records import budget_spent, trial_records
from netfab.tune.run import new_study
from netfab.tune.study import load_optuna_study
from tests.helpers import PROJECT, fab_command, user_env
from tests.tune import postgres_server
from tests.tune.sshd_hosts import SshHosts

pytestmark = pytest.mark.slow  # studies of several trainings
EPOCHS = {"NET_EPOCHS": "2"}
HEARTBEAT = "2"  # seconds: a lost trial is found stale after 4


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    reason = postgres_server.missing_reason()
    if reason:
        pytest.skip(reason)
    server = postgres_server.PostgresServer(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


def study_of(spec):
    return load_optuna_study(spec, open_storage(spec.storage_url))


def assert_every_trial_ran_once_and_is_accounted_for(spec, trials: int, workers: int) -> dict:
    records = trial_records(study_of(spec).get_trials())
    finished = {n: r for n, r in records.items() if r["status"] in ("ok", "pruned", "failed")}
    lost = {n: r for n, r in records.items() if r["status"] == "lost"}
    assert set(finished) | set(lost) == set(records), records  # nothing left running or waiting
    for record in lost.values():  # a lost trial ran again, to the end, with its values
        again = records[record["retried_as"]]
        while again["status"] == "lost":
            again = records[again["retried_as"]]
        assert again["values"] == record["values"] and again["folder"] == record["folder"]
    # Workers that ask at the same moment may each start one more: at most one extra per worker.
    assert trials <= len(finished) <= trials + workers - 1
    assert budget_spent(study_of(spec).get_trials()) == len(finished)
    assert len({r["folder"] for r in finished.values()}) == len(finished)  # a folder per trial
    for record in finished.values():  # started once, plus once per time it was lost and rerun
        log = (Path(record["folder"]) / "log.txt").read_text()
        starts = log.count("training deep_v1 (") + log.count(" resuming ")
        reruns = sum(1 for r in lost.values() if r["folder"] == record["folder"])
        assert 1 <= starts <= 1 + reruns, log[-2000:]
    values = [json.dumps(r["values"], sort_keys=True) for r in finished.values()]
    assert len(set(values)) == len(values)  # no trial's values drawn twice
    return records


def test_two_processes_share_one_study_in_postgres(postgres, tmp_path):
    result = subprocess.run(
        fab_command("tune", "--trials=4", "--parallel=2", "--study=two", f"--output={tmp_path}",
                    f"--storage={postgres.url}", f"--heartbeat={HEARTBEAT}", "--pruner=none"),
        cwd=PROJECT, env=user_env(EPOCHS), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    spec = new_study("deep_v1", str(tmp_path), "two", seed=0, storage=postgres.url, fixed_env=EPOCHS,
                     pruner="none")
    records = assert_every_trial_ran_once_and_is_accounted_for(spec, trials=4, workers=2)
    assert {r["worker"] for r in records.values()} == {"local-0", "local-1"}  # both took trials
    assert not (tmp_path / "two" / "study.db").exists()  # the study lives in PostgreSQL only


def test_a_worker_killed_mid_trial_leaves_a_study_that_a_worker_added_later_completes(postgres, tmp_path):
    spec = new_study("deep_v1", str(tmp_path), "kill", seed=3, storage=postgres.url,
                     fixed_env={"NET_EPOCHS": "3"}, pruner="none")

    def worker(name: str, log_name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "netfab.tune.worker", spec.folder, "--trials", "2",
             "--heartbeat", HEARTBEAT], cwd=PROJECT, env=user_env({"NETFAB_WORKER": name}),
            stdout=open(tmp_path / log_name, "w"), stderr=subprocess.STDOUT)

    first = worker("first", "first.log")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # its first trial has reported an epoch: kill it there
        records = trial_records(study_of(spec).get_trials())
        if any(r["status"] == "running" and r["epochs"] >= 1 for r in records.values()):
            break
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)  # no chance to give the trial back: only its heartbeat stops
    first.wait(timeout=30)
    assert trial_records(study_of(spec).get_trials())[0]["status"] == "running"

    second = worker("second", "second.log")  # a worker joining the study mid-way
    assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    records = assert_every_trial_ran_once_and_is_accounted_for(spec, trials=2, workers=1)
    assert records[0]["status"] == "lost" and "its worker stopped mid-trial" in records[0]["error"]
    rerun = records[records[0]["retried_as"]]
    assert rerun["status"] == "ok" and rerun["worker"] == "second"
    assert rerun["curve"][0] == records[0]["curve"][0]  # the killed trial's first epoch came along
    assert "resuming" in (spec.trial_dir(0) / "log.txt").read_text()  # from its last checkpoint


@pytest.mark.ssh
def test_two_hosts_share_one_study_in_postgres_and_one_host_drops_out(postgres, tmp_path):
    hosts = SshHosts(tmp_path / "ssh", count=2)
    try:
        spec = new_study("deep_v1", str(tmp_path), "ssh", seed=0, storage=postgres.url,
                         fixed_env=EPOCHS, pruner="none")
        command = fab_command("-i", str(hosts.client_key), "-H", ",".join(hosts.host_strings),
                              "tune", "--trials=5", "--study=ssh", f"--output={tmp_path}",
                              f"--storage={postgres.url}", f"--heartbeat={HEARTBEAT}", "--pruner=none",
                              f"--remote-python={sys.executable}", f"--remote-dir={PROJECT}")
        with open(tmp_path / "tune.log", "w") as log:
            tune = subprocess.Popen(command, cwd=PROJECT, env=user_env(EPOCHS), stdout=log,
                                    stderr=subprocess.STDOUT, text=True)
            # Host 1 goes away once both hosts have finished a trial and it runs another.
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and tune.poll() is None:
                records = trial_records(study_of(spec).get_trials())
                done_on = {r["worker"] for r in records.values() if r["status"] == "ok"}
                if len(done_on) == 2 and any(r["status"] == "running" and r["worker"] == hosts.host_strings[1]
                                             for r in records.values()):
                    break
                time.sleep(0.5)
            hosts.kill(1)
            returncode = tune.wait(timeout=900)
    finally:
        hosts.stop()
    out = (tmp_path / "tune.log").read_text()
    assert returncode == 0, out[-3000:]
    assert f"host {hosts.host_strings[1]} dropped out" in out, out[-3000:]
    records = assert_every_trial_ran_once_and_is_accounted_for(spec, trials=5, workers=2)
    assert {r["worker"] for r in records.values() if r["status"] == "ok"} == set(hosts.host_strings)
    assert "best trial" in out and (tmp_path / "ssh" / "leaderboard.csv").exists()


@pytest.mark.ssh
def test_a_host_without_sshd_is_dropped_and_the_other_runs_the_study(postgres, tmp_path):
    hosts = SshHosts(tmp_path / "ssh", count=2)
    try:
        hosts.kill(0)  # host 0 is down before the study starts
        result = subprocess.run(
            fab_command("-i", str(hosts.client_key), "-H", ",".join(hosts.host_strings),
                        "tune", "--trials=1", "--study=one", f"--output={tmp_path}",
                        f"--storage={postgres.url}", f"--remote-python={sys.executable}",
                        f"--remote-dir={PROJECT}"),
            cwd=PROJECT, env=user_env({"NET_EPOCHS": "1"}), capture_output=True, text=True, timeout=300)
    finally:
        hosts.stop()
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"host {hosts.host_strings[0]} dropped out" in result.stdout
    assert f"trial 0 on {hosts.host_strings[1]}" in result.stdout
    assert "[1/1] trial 0: validation AUC" in result.stdout
