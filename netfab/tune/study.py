"""What a study is: its settings (study.json), its Optuna study (sampler, pruner, storage), the
folder of each trial and the command that reproduces a trial.

    from netfab.tune.study import StudySpec, open_study, load_optuna_study
    spec = open_study(StudySpec(name="lr", variant="deep_v1", ...))   # creates or resumes <output>/lr
    study = load_optuna_study(spec, storage)    # an optuna.Study on the spec's storage
    trial = ask_trial(study, spec)
    spec.trial_command(values, folder)          # "NET_EPOCHS=2 NET_LEARNING_RATE=0.0012 fab train ..."

Layout of <output>/<study>/:
    study.json                   the settings: variant, dataset, seed, sampler, pruner, storage, space
    study.db                     the default storage (SQLite): every trial, its values, its curve
    trials/0003/log.txt          the trial's `fab train` output
    trials/0003/<variant>/<run_id>/model.zip   the trial's model zip (a pruned trial leaves none)
    workers/*.log                what each local worker printed
    leaderboard.csv  study.png  history.png  importances.png  curves.png   rebuilt from the storage

The storage is the study's only shared state: every worker, on any host, asks it for a trial and
tells it the outcome, so a study stopped at any moment continues where it stopped.
"""
import dataclasses
import json
import shlex
from pathlib import Path

from data.fixture import FIXTURE_PATH
from netfab import storage
from netfab.environment import PROJECT_ROOT
from netfab.errors import ConfigError
from netfab.study_storage import PRUNERS, SPEC_ATTR, shown_url, sqlite_url
from netfab.tune.search_space import SearchSpace

SPEC = "study.json"
SAMPLERS = ("tpe", "random")
# Relative to the project checkout a trial runs in, which may be on another host.
FIXTURE_DATASET = str(FIXTURE_PATH.relative_to(PROJECT_ROOT))


@dataclasses.dataclass(frozen=True)
class StudySpec:
    name: str
    variant: str
    dataset: str  # URI; a relative path is relative to the project checkout of the trial
    folder: str  # the study folder (absolute path), the same path on every host
    seed: int
    space_file: str
    space: dict  # the search space file's content
    fixed_env: dict  # NET_* overrides applied to every trial (e.g. NET_EPOCHS=2)
    sampler: str = "tpe"  # one of SAMPLERS
    pruner: str = "median"  # one of PRUNERS
    startup_trials: int = 5  # random trials before TPE models, finished trials before median prunes
    storage: str = ""  # Optuna storage URL; "" = the SQLite file in the folder

    # Fields a resumed study must share with the one on disk (the trial count may grow).
    IDENTITY = ("variant", "dataset", "seed", "space", "fixed_env", "sampler", "pruner",
                "startup_trials")

    @property
    def storage_url(self) -> str:
        return self.storage or sqlite_url(self.folder)

    def search_space(self) -> SearchSpace:
        return SearchSpace.from_record(self.variant, self.space, f"{self.folder}/{SPEC}")

    def trial_dir(self, number: int) -> Path:
        return storage.local_path(self.folder) / "trials" / f"{number:04d}"

    def trial_env(self, values: dict) -> dict[str, str]:
        return {**self.fixed_env, **self.search_space().to_env(values)}

    def trial_args(self, folder: Path) -> list[str]:
        return ["train", f"--variant={self.variant}", f"--dataset={self.dataset}", f"--output={folder}"]

    def trial_command(self, values: dict, folder: Path) -> str:
        """The line that reproduces a trial, run from the project checkout."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.trial_env(values).items())
        return f"{env} fab {' '.join(shlex.quote(a) for a in self.trial_args(folder))}".strip()

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def check_choices(sampler: str, pruner: str) -> None:
    for option, value, valid in (("sampler", sampler, SAMPLERS), ("pruner", pruner, PRUNERS)):
        if value not in valid:
            raise ConfigError(f"--{option}={value}: not one of {', '.join(valid)}")


def open_study(spec: StudySpec) -> StudySpec:
    """Create the study folder, or check that the one there holds the same study and resume it.
    The Optuna study is created by the first of its workers (load_optuna_study)."""
    check_choices(spec.sampler, spec.pruner)
    folder = storage.local_path(spec.folder)
    path = folder / SPEC
    if path.exists():
        _refuse_other_settings(spec, json.loads(path.read_text()), str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    storage.write_json_atomically(path, spec.to_json())
    return spec


def load_optuna_study(spec: StudySpec, optuna_storage):
    """The spec's Optuna study (created if it is the first to ask), refusing a study of that name
    that was started with other settings. ask_trial seeds the sampler per trial. The
    pruner is the trial's own process's (netfab/train/trial_reporting.py), built from the
    settings this records in the storage."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what happens
    study = optuna.create_study(storage=optuna_storage, study_name=spec.name, direction="maximize",
                                load_if_exists=True, sampler=make_sampler(spec, 0))
    recorded = study.user_attrs.get(SPEC_ATTR)
    if recorded:
        _refuse_other_settings(spec, recorded, shown_url(spec.storage_url))
    else:
        study.set_user_attr(SPEC_ATTR, spec.to_json())
    return study


def ask_trial(study, spec: StudySpec):
    """The study's next trial: a queued retry first, else the sampler's suggestion over the
    search space, the sampler seeded with (seed, the trial's number). The number is the storage's,
    unique in the study even when workers ask at the same moment (a count of the trials each
    worker saw is not: two workers would draw the same values), and in a sequential study it is
    the count of trials before it, so every run and resume draws the same values."""
    import optuna

    trial = study.ask()  # the trial, numbered by the storage, before any value is drawn
    study.sampler = make_sampler(spec, trial.number)
    for name, distribution in spec.search_space().distributions().items():
        _suggest(trial, name, distribution)
    return trial


def _suggest(trial, name: str, distribution) -> None:
    """One value of `distribution` drawn for `trial` through Optuna's public suggest calls."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, FloatDistribution):
        trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log, step=distribution.step)
    elif isinstance(distribution, IntDistribution):
        trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log, step=distribution.step)
    elif isinstance(distribution, CategoricalDistribution):
        trial.suggest_categorical(name, distribution.choices)
    else:
        raise TypeError(f"search space key {name!r}: no suggest call for {type(distribution).__name__}")


def make_sampler(spec: StudySpec, trial_number: int):
    import optuna

    seed = spec.seed * 1_000_003 + trial_number
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=spec.startup_trials)


def _refuse_other_settings(spec: StudySpec, recorded: dict, where: str) -> None:
    changed = [k for k in StudySpec.IDENTITY if recorded.get(k) != getattr(spec, k)]
    if changed:
        details = "; ".join(f"{k}: {json.dumps(recorded.get(k))} there, {json.dumps(getattr(spec, k))} now"
                            for k in changed)
        raise ConfigError(f"study {spec.name!r} in {where} was started with different settings "
                          f"({details}); rerun with the same ones to resume, or pick a new "
                          f"--study=NAME")


def read_spec(folder: str) -> StudySpec:
    path = storage.local_path(folder) / SPEC
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: {folder} is not a study folder (fab tune creates it)")
    return StudySpec(**json.loads(path.read_text()))
