"""Test helpers: config with overrides, NDJSON files, running `fab` as a user does."""
import json
import os
import subprocess
import sys
from pathlib import Path

from data.fixture import FIXTURE_PATH
from netfab.config import load_config

PROJECT = Path(__file__).resolve().parent.parent
FAST = {"NET_EPOCHS": "3"}  # enough epochs to learn something, few enough for a test


def config_for(variant="deep_v1", **env):
    """The effective config of `variant` with NET_* overrides given as keyword arguments."""
    return load_config(variant, environ={f"NET_{k.upper()}": str(v) for k, v in env.items()})


def write_ndjson(path: Path, rows) -> Path:
    """Rows (dicts, or raw strings written as they are) as one line each."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def fixture_rows(count=None) -> list[dict]:
    lines = FIXTURE_PATH.read_text().splitlines()
    return [json.loads(line) for line in lines[:count]]


def fab_command(*args) -> list[str]:
    return [str(Path(sys.executable).with_name("fab")), *args]


def user_env(env=None) -> dict:
    """This process's environment without stray NET_* variables, plus `env`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("NET_")}, **(env or {})}


def run_fab(*args, env=None, cwd=PROJECT, timeout=600) -> subprocess.CompletedProcess:
    """`fab ARGS` in a real subprocess, as a user types it."""
    return subprocess.run(fab_command(*args), cwd=cwd, env=user_env(env), capture_output=True,
                          text=True, timeout=timeout)


def project_copy(destination: Path) -> Path:
    """A copy of this checkout's tracked and new files (a build context to change freely)."""
    import shutil

    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in names:
        if (PROJECT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, destination / name)
    return destination


def rewritten_zip(source: str, target: Path, edit_json: dict) -> str:
    """A copy of model zip `source` at `target` with JSON members changed by `edit_json` ({name: fn(dict)
    -> dict}) and its manifest written again: a zip as another netfab version or run would have made it."""
    import tempfile

    from netfab import model_zip

    with tempfile.TemporaryDirectory() as tmp, model_zip.ModelZip(source) as package:
        folder = package.extract(Path(tmp) / "package")
        (folder / model_zip.MANIFEST).unlink()
        for name, edit in edit_json.items():
            (folder / name).write_text(json.dumps(edit(json.loads((folder / name).read_text()))))
        return model_zip.write_package(folder, str(target))
