"""A study's trials as the storage holds them, read as records: what each trial is, and how much
of the trial budget the study has spent.

    from netfab.tune.records import trial_records, budget_spent, failures_in_a_row
    records = trial_records(study.get_trials(deepcopy=False))   # {number: record}, every trial
    budget_spent(trials) < 20                                    # a worker asks for another trial

A record's status: `ok` (finished; its value is its validation AUC), `pruned` (stopped by the
pruner; epochs run and its curve kept), `failed` (its `fab train` failed: the error line),
`lost` (its worker stopped mid-trial, the trial runs again under another number: `retried_as`),
`running`, `waiting` (a retry not yet taken).
"""
import warnings

from optuna.exceptions import ExperimentalWarning
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

STATUS = {TrialState.COMPLETE: "ok", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
          TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
# What the worker records on each trial (Optuna user attributes), beside the storage's own fields.
ATTRS = ("values", "validation_loss", "test_auc", "test_loss", "best_epoch", "seconds",
         "train_seconds", "worker", "host", "gpu", "folder", "zip_uri", "command", "error")


def trial_records(trials) -> dict[int, dict]:
    retried_as = _retries(trials)
    records = {}
    for trial in trials:
        record = {"trial": trial.number, "status": STATUS[trial.state],
                  "validation_auc": trial.value if trial.state == TrialState.COMPLETE else None,
                  "epochs": len(trial.intermediate_values),
                  "curve": [trial.intermediate_values[s] for s in sorted(trial.intermediate_values)],
                  "retried_as": retried_as.get(trial.number)}
        record.update({key: trial.user_attrs.get(key) for key in ATTRS})
        record["values"] = record["values"] or {}
        if _lost(trial):
            record["status"] = "lost"
            record["error"] = record["error"] or "its worker stopped mid-trial" + (
                f"; run again as trial {record['retried_as']}" if record["retried_as"] is not None
                else "; retried too often, not run again")
        records[trial.number] = record
    return records


def budget_spent(trials) -> int:
    """Trials that count towards --trials: all but the lost ones that run again under a new number."""
    retried = _retries(trials)
    return sum(1 for t in trials if not (_lost(t) and t.number in retried))


def failures_in_a_row(trials) -> int:
    """How many of the latest finished trials failed in `fab train` (lost trials do not count)."""
    finished = sorted((t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                       or (t.state == TrialState.FAIL and not _lost(t))),
                      key=lambda t: t.datetime_complete)
    count = 0
    for trial in reversed(finished):
        if trial.state != TrialState.FAIL:
            break
        count += 1
    return count


def _lost(trial) -> bool:
    # A failed training records its error line; a trial failed by the storage (its worker's
    # heartbeat stopped) or given back by a stopped worker has none.
    return trial.state == TrialState.FAIL and not trial.user_attrs.get("error")


def _retries(trials) -> dict[int, int]:
    """{lost trial number: the number it runs again as}. The retry callback marks each retry with
    the first trial of its chain; a chain's trials retry each other in order."""
    chains: dict[int, list[int]] = {}
    for trial in trials:
        first = first_of_retries(trial)
        if first is not None:
            chains.setdefault(first, [first]).append(trial.number)
    retried_as = {}
    for chain in chains.values():
        chain.sort()
        retried_as.update(zip(chain, chain[1:]))
    return retried_as


def retry_callback(max_retry: int):
    """What a lost trial is handed to: queued again (with its curve) up to `max_retry` times."""
    with warnings.catch_warnings():  # stable since Optuna 2.8, still marked experimental
        warnings.simplefilter("ignore", ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback(max_retry=max_retry, inherit_intermediate_values=True)


def first_of_retries(trial) -> int | None:
    """The number of the trial that `trial` runs again (the first of its chain), or None."""
    with warnings.catch_warnings():  # stable since Optuna 2.8, still marked experimental
        warnings.simplefilter("ignore", ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
