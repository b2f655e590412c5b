"""A study's sampling and bookkeeping on a real Optuna storage (SQLite), without training: the
objective told here is a stand-in for a trial's validation AUC, computed from its values."""
import math
import subprocess
import sys

import pytest
from optuna.trial import TrialState

from netfab.errors import ConfigError
from netfab.study_storage import open_storage, sqlite_url
from netfab.tune.records import budget_spent, failures_in_a_row, retry_callback, trial_records
from netfab.tune.run import new_study
from netfab.tune.study import ask_trial, load_optuna_study
from tests.helpers import PROJECT


def stand_in_auc(values: dict) -> float:
    """Peaks at learning_rate 0.003, dropout 0.1: a landscape TPE models differently from random."""
    return 0.9 - abs(math.log10(values["learning_rate"] / 0.003)) / 4 - abs(values["dropout"] - 0.1)


def suggestions(spec, count: int, start_over_at: int | None = None) -> list[dict]:
    """Values of `count` sequential trials; with `start_over_at`, the study is reopened there
    (a new process resuming it, as rerunning `fab tune` does)."""
    study = load_optuna_study(spec, open_storage(spec.storage_url))
    drawn = []
    for number in range(count):
        if number == start_over_at:
            study = load_optuna_study(spec, open_storage(spec.storage_url))
        trial = ask_trial(study, spec)
        values = spec.search_space().decode(trial.params)
        study.tell(trial, stand_in_auc(values))
        drawn.append(values)
    return drawn


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_the_same_seed_draws_the_same_trials_and_a_resume_continues_the_sequence(tmp_path, sampler):
    studies = [new_study("deep_v1", str(tmp_path), f"s{i}", seed=7, sampler=sampler, startup_trials=3)
               for i in range(3)]
    first = suggestions(studies[0], 8)
    assert suggestions(studies[1], 8) == first
    assert suggestions(studies[2], 8, start_over_at=5) == first  # stopped after 5, rerun
    assert len({v["learning_rate"] for v in first}) == 8  # no trial drawn twice
    other_seed = new_study("deep_v1", str(tmp_path), "other", seed=8, sampler=sampler)
    assert suggestions(other_seed, 3) != first[:3]


def test_workers_asking_at_once_draw_different_values(tmp_path):
    """Two workers' studies (one storage) each asking before either tells: the seed follows the
    trial's number in the storage, not how many trials a worker saw, so their values differ."""
    spec = new_study("deep_v1", str(tmp_path), "together", seed=3)
    workers = [load_optuna_study(spec, open_storage(spec.storage_url)) for _ in range(2)]
    first, second = (ask_trial(study, spec) for study in workers)
    assert first.number != second.number and first.params != second.params


def test_a_lost_trial_runs_again_and_the_budget_counts_it_once(tmp_path):
    spec = new_study("deep_v1", str(tmp_path), "lost", seed=0)
    study = load_optuna_study(spec, open_storage(spec.storage_url))
    retry = retry_callback(max_retry=3)
    done = ask_trial(study, spec)
    study.tell(done, 0.8)
    lost = ask_trial(study, spec)
    lost.report(0.7, step=1)
    study.tell(lost, state=TrialState.FAIL)  # as the storage does when its heartbeat stops
    retry(study, study.trials[lost.number])
    assert budget_spent(study.trials) == 2  # the lost trial and its waiting retry count once
    again = ask_trial(study, spec)  # the retry comes first, with the lost trial's values
    assert again.params == lost.params
    records = trial_records(study.trials)
    assert records[lost.number]["status"] == "lost" and records[lost.number]["retried_as"] == again.number
    assert records[again.number]["curve"] == [0.7]  # its curve so far came along
    failed = ask_trial(study, spec)
    failed.set_user_attr("error", "dataset x.json does not exist")
    study.tell(failed, state=TrialState.FAIL)  # a failed training counts, and in a row
    assert budget_spent(study.trials) == 3
    assert failures_in_a_row(study.trials) == 1


def test_a_study_refuses_to_resume_with_other_settings(tmp_path):
    new_study("deep_v1", str(tmp_path), "s", seed=0)
    with pytest.raises(ConfigError, match="study 's' .* was started with different settings \\(seed: 0 there, 1 now\\)"):
        new_study("deep_v1", str(tmp_path), "s", seed=1)
    with pytest.raises(ConfigError, match="sampler: \"tpe\" there, \"random\" now"):
        new_study("deep_v1", str(tmp_path), "s", seed=0, sampler="random")


def test_an_unknown_sampler_or_a_storage_out_of_reach_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="--sampler=cmaes: not one of tpe, random"):
        new_study("deep_v1", str(tmp_path), "s", sampler="cmaes")
    with pytest.raises(ConfigError, match="study storage postgresql://tuner:\\*\\*\\*@127.0.0.1:1/x cannot be opened"):
        open_storage("postgresql://tuner:secret@127.0.0.1:1/x")


def test_processes_opening_a_new_storage_at_once_all_open_it(tmp_path):
    """Workers (pods, --parallel) starting together on a fresh study race to create its tables."""
    url = sqlite_url(tmp_path)
    opener = f"from netfab.study_storage import open_storage, sqlite_url; open_storage({url!r})"
    openers = [subprocess.Popen([sys.executable, "-c", opener], cwd=PROJECT, stderr=subprocess.PIPE,
                                text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in openers]
    assert [p.returncode for p in openers] == [0] * 4, errors
