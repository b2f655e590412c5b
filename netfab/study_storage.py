"""An Optuna study's storage, opened from its URL, and its pruner: the tuning wing's workers and a
training run that reports its epochs to a study (`fab train` as a tuning trial) share them.

    from netfab.study_storage import open_storage, sqlite_url, make_pruner
    storage = open_storage(sqlite_url("studies/lr"))                       # the default: one file
    storage = open_storage("postgresql://tuner@db/netfab", heartbeat=60)   # many hosts
    make_pruner("median", startup_trials=5, epochs=20)                     # what a trial asks

Every URL goes to Optuna's RDBStorage (SQLAlchemy): `sqlite:///…` for one machine, any server
SQLAlchemy speaks (`postgresql://…`, `mysql://…`) for many. A password is best left out of the
URL (it is recorded in study.json): libpq reads PGPASSWORD or ~/.pgpass.
"""
import time
from pathlib import Path
from typing import NoReturn

from netfab.errors import ConfigError

# How a tuning worker tells the `fab train` it starts which trial it is (netfab/train/trial_reporting.py)
ENV_STORAGE = "NETFAB_TRIAL_STORAGE"  # the study's storage URL
ENV_STUDY = "NETFAB_TRIAL_STUDY"  # the study's name in that storage
ENV_TRIAL_ID = "NETFAB_TRIAL_ID"  # Optuna's trial id (unique in the storage)
STUDY_DB = "study.db"  # the default storage, in the study folder
SPEC_ATTR = "netfab_spec"  # the study's settings (study.json), kept in the storage as well
PRUNERS = ("median", "hyperband", "none")
SQLITE_BUSY_SECONDS = 60  # a writer waits this long for another process's lock, not 5 s
SCHEMA_ATTEMPTS = 4  # opening a storage whose tables another process is creating


def sqlite_url(folder) -> str:
    return f"sqlite:///{Path(folder).resolve() / STUDY_DB}"


def open_storage(url: str, heartbeat: int | None = None, stale_trial_callback=None):
    """Optuna's RDBStorage for `url`; with `heartbeat` (seconds) a trial whose worker stops
    beating for twice that long is failed and handed to `stale_trial_callback`."""
    import optuna
    import sqlalchemy.exc

    engine_kwargs = {}
    if url.startswith("sqlite"):
        # Several local workers and their trials write to one file: wait for the lock.
        engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_SECONDS}}
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat if heartbeat else None,
                heartbeat_stale_trial_callback=stale_trial_callback)
        except sqlalchemy.exc.SQLAlchemyError as error:
            # Processes opening a new storage at once (pods, workers) race to create its tables
            # and stamp their version; the losers (a table "already exists", a duplicate version
            # row) open them as they are a moment later.
            lost_race = isinstance(error, sqlalchemy.exc.IntegrityError) or "already exists" in str(error)
            if not lost_race or attempt == SCHEMA_ATTEMPTS - 1:
                _refuse(url, error)
            time.sleep(1 + attempt)
        except (ImportError, ValueError) as error:
            _refuse(url, error)


def _refuse(url: str, error: Exception) -> NoReturn:
    reason = str(error).strip().splitlines()[0][:300]
    raise ConfigError(f"study storage {shown_url(url)} cannot be opened: {reason}; "
                      f"check --storage (a sqlite:/// path or a postgresql:// server this "
                      f"machine reaches)") from None


def shown_url(url: str) -> str:
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: show it as given
        return url


def make_pruner(kind: str, startup_trials: int, epochs: int):
    """The study's pruner: `median` stops a trial whose validation AUC after an epoch is below
    the median of the earlier trials at that epoch, once `startup_trials` have finished;
    `hyperband` runs brackets over 1..`epochs` epochs."""
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()
