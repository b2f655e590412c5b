"""A study's folder and records: what a study is (study.json), and one file per finished trial.

    from netfab.tune.study import StudySpec, open_study
    spec = open_study(StudySpec(name="lr", variant="deep_v1", ...))   # creates or resumes <output>/lr
    spec.trial_command(3)          # "NET_EPOCHS=2 NET_LEARNING_RATE=0.0012 fab train --variant=..."
    spec.finished()                # {index: record} of the trials with a trial.json

Layout of <output>/<study>/:
    study.json                   the spec: variant, dataset, seed, fixed NET_* overrides, space
    trials/0003/trial.json       written last and atomically: a trial without it is unfinished
    trials/0003/log.txt          the trial's `fab train` output
    trials/0003/<variant>/<run_id>/model.zip   the trial's model zip
    leaderboard.csv  study.png   rebuilt from the trial.json files

Everything a resume needs is in trial.json files that are there whole or not at all, so a study
killed at any moment continues where it stopped.
"""
import dataclasses
import json
import shlex
from pathlib import Path

from data.fixture import FIXTURE_PATH
from netfab import storage
from netfab.environment import PROJECT_ROOT
from netfab.errors import ConfigError
from netfab.tune.search_space import SearchSpace

SPEC = "study.json"
TRIAL_RECORD = "trial.json"
# Relative to the project checkout a trial runs in, which may be on another host.
FIXTURE_DATASET = str(FIXTURE_PATH.relative_to(PROJECT_ROOT))


@dataclasses.dataclass(frozen=True)
class StudySpec:
    name: str
    variant: str
    dataset: str  # URI; a relative path is relative to the project checkout of the trial
    folder: str  # the study folder (absolute path or URI), shared by every host
    seed: int
    space_file: str
    space: dict  # the search space file's content
    fixed_env: dict  # NET_* overrides applied to every trial (e.g. NET_EPOCHS=2)

    # Fields a resumed study must share with the one on disk (the trial count may grow).
    IDENTITY = ("variant", "dataset", "seed", "space", "fixed_env")

    def search_space(self) -> SearchSpace:
        return SearchSpace.from_record(self.variant, self.space, f"{self.folder}/{SPEC}")

    def trial_dir(self, index: int) -> Path:
        return storage.local_path(self.folder) / "trials" / f"{index:04d}"

    def trial_values(self, index: int) -> dict:
        return self.search_space().sample(self.seed, index)

    def trial_env(self, index: int) -> dict[str, str]:
        return {**self.fixed_env, **self.search_space().to_env(self.trial_values(index))}

    def trial_args(self, index: int) -> list[str]:
        return ["train", f"--variant={self.variant}", f"--dataset={self.dataset}",
                f"--output={self.trial_dir(index)}"]

    def trial_command(self, index: int) -> str:
        """The line that reproduces trial `index`, run from the project checkout."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.trial_env(index).items())
        return f"{env} fab {' '.join(shlex.quote(a) for a in self.trial_args(index))}".strip()

    def finished(self) -> dict[int, dict]:
        records = {}
        for path in sorted((storage.local_path(self.folder) / "trials").glob(f"*/{TRIAL_RECORD}")):
            record = json.loads(path.read_text())
            records[record["trial"]] = record
        return records

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def open_study(spec: StudySpec) -> StudySpec:
    """Create the study folder, or check that the one there is the same study and resume it."""
    folder = storage.local_path(spec.folder)
    path = folder / SPEC
    if path.exists():
        on_disk = json.loads(path.read_text())
        changed = [k for k in StudySpec.IDENTITY if on_disk.get(k) != getattr(spec, k)]
        if changed:
            details = "; ".join(f"{k}: {json.dumps(on_disk.get(k))} there, {json.dumps(getattr(spec, k))} now"
                                for k in changed)
            raise ConfigError(f"study {spec.name!r} in {folder} was started with different settings "
                              f"({details}); rerun with the same ones to resume, or pick a new "
                              f"--study=NAME")
        return spec
    folder.mkdir(parents=True, exist_ok=True)
    storage.write_json_atomically(path, spec.to_json())
    return spec


def read_spec(folder: str) -> StudySpec:
    path = storage.local_path(folder) / SPEC
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: {folder} is not a study folder (fab tune creates it)")
    return StudySpec(**json.loads(path.read_text()))
