"""`fab -H a,b tune` over real SSH: two sshd on loopback ports (tests/tune/sshd_hosts.py) are two hosts.

One study of 10 short trials runs across both hosts; one host's sshd (and its sessions) is
killed mid-study and the other host finishes every trial. Then the leaderboard's reproduce
command re-creates the best trial's metric. Nothing is faked: both hosts are this machine, so
the study folder stands in for shared storage.
"""
import json
import subprocess
import sys
import time

import pytest

from netfab.tune.report import ranked
from tests.helpers import PROJECT, fab_command, user_env
from tests.tune.sshd_hosts import SshHosts

# Needs a real sshd and takes minutes: out of the everyday tier.
pytestmark = [pytest.mark.ssh, pytest.mark.slow]
FAST = {"NET_EPOCHS": "1"}  # a trial is a real `fab train`; one epoch keeps 10 of them short


@pytest.fixture
def two_hosts(tmp_path):
    hosts = SshHosts(tmp_path / "ssh", count=2)
    yield hosts
    hosts.stop()


def test_study_across_two_hosts_finishes_when_one_host_dies(two_hosts, tmp_path):
    output = tmp_path / "studies"
    study = output / "ssh"
    command = fab_command("-i", str(two_hosts.client_key), "-H", ",".join(two_hosts.host_strings),
                          "tune", "--trials=10", "--study=ssh", f"--output={output}",
                          f"--remote-python={sys.executable}", f"--remote-dir={PROJECT}")
    with open(tmp_path / "tune.log", "w") as log:
        tune = subprocess.Popen(command, cwd=PROJECT, env=user_env(FAST), stdout=log,
                                stderr=subprocess.STDOUT, text=True)
        # Kill the second host once it has finished a trial and is running another one.
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and tune.poll() is None:
            records = [json.loads(p.read_text()) for p in study.glob("trials/*/trial.json")]
            if len(records) >= 4:
                break
            time.sleep(1)
        two_hosts.kill(1)
        returncode = tune.wait(timeout=600)
    out = (tmp_path / "tune.log").read_text()
    assert returncode == 0, out[-3000:]
    assert f"host {two_hosts.host_strings[1]} dropped out" in out, out[-3000:]

    records = {int(p.parent.name): json.loads(p.read_text()) for p in study.glob("trials/*/trial.json")}
    assert sorted(records) == list(range(10))
    assert all(r["status"] == "ok" for r in records.values()), [r["error"] for r in records.values()]
    leaderboard = (study / "leaderboard.csv").read_text().splitlines()
    assert len(leaderboard) == 11 and leaderboard[0].startswith("rank,trial,learning_rate")
    assert (study / "study.png").stat().st_size > 10_000
    best, *_, worst = ranked(records)
    assert best["validation_auc"] > worst["validation_auc"]
    assert f"best trial {best['trial']}: validation AUC {best['validation_auc']:.4f}, test AUC {best['test_auc']:.4f}" in out

    # The reproduce command, typed into a shell in the project checkout, gives the same metric.
    again = subprocess.run(["bash", "-c", best["command"].replace(" fab ", f" {fab_command()[0]} ", 1)],
                           cwd=PROJECT, env=user_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"test AUC {best['test_auc']:.4f}" in again.stdout


def test_a_host_without_sshd_is_dropped_and_the_other_runs_the_study(two_hosts, tmp_path):
    two_hosts.kill(0)  # host 0 is down before the study starts
    result = subprocess.run(
        fab_command("-i", str(two_hosts.client_key), "-H", ",".join(two_hosts.host_strings),
                    "tune", "--trials=1", "--study=one", f"--output={tmp_path}",
                    f"--remote-python={sys.executable}", f"--remote-dir={PROJECT}"),
        cwd=PROJECT, env=user_env(FAST), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"host {two_hosts.host_strings[0]} dropped out" in result.stdout
    record = json.loads((tmp_path / "one/trials/0000/trial.json").read_text())
    assert record["status"] == "ok"
