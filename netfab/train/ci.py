"""`fab ci`: what Jenkins runs — a sanity training of every variant on the fixture, then each zip checked.

    from netfab.train.ci import run_ci
    checks = run_ci("artifacts/ci")          # raises NetfabError naming every failed check

Checks per zip: the manifest and every required file, finite metrics in every epoch, a test AUC
floor (binary) or a test figure better than the trivial model's (the other tasks: the figure that
chose the epoch, netfab/tasks.py), and the exported SavedModel reloaded in a fresh Python process
answering the fixture's first rows with the same outputs as model.keras. With a baseline zip,
each zip must also pass fab evaluate's gate against it (evaluate.py), its evaluation written
beside the zip.
"""
import dataclasses
import json
import math
import subprocess
import sys
import tempfile

import numpy as np

from netfab import model_zip, storage
from netfab.config import config_from_values
from netfab.errors import ConfigError, NetfabError, closest
from netfab.tasks import TASKS

CHECK_ROWS = 8
TOLERANCE = 1e-5


@dataclasses.dataclass
class VariantCheck:
    variant: str
    zip_uri: str = ""
    test_auc: float = float("nan")  # binary; the other tasks' figure is `figure` (its name `metric`)
    problems: list[str] = dataclasses.field(default_factory=list)
    task: str = "binary"
    metric: str = "auc"
    figure: float = float("nan")
    baseline: float = float("nan")  # the trivial model's test figure
    seconds: float = float("nan")  # the training run's


def run_ci(output: str, dataset: str, variants=None, min_auc: float = 0.65, baseline: str = "",
           gate=None) -> list[VariantCheck]:
    """Train and check every variant (or `variants`); with `baseline`, each zip gated against it
    by `gate` (netfab.train.evaluate.Gate, its defaults when None)."""
    from netfab.config import load_config, read_variants
    from netfab.train.loop import train

    if baseline:  # a missing or damaged baseline is found before the first training, not after
        model_zip.ModelZip(baseline).close()
    known = list(read_variants())
    for variant in variants or ():  # a typo is found before the first training, not after the others
        if variant not in known:
            raise ConfigError(f"--variants: unknown variant {variant!r}{closest(variant, known)}; "
                              f"the variants are {', '.join(known)} (variant_config.json)")
    checks = []
    for variant in variants or known:
        check = VariantCheck(variant)
        checks.append(check)
        try:
            effective = load_config(variant)
            check.task = effective.config.task
            result = train(effective, dataset, output)
        except NetfabError as error:
            check.problems.append(f"training failed: {error}")
            continue
        check.metric = TASKS[check.task].monitor_exact
        check.zip_uri, check.test_auc = result.zip_uri, result.metrics.get("test_auc", float("nan"))
        check.figure = result.metrics[f"test_{check.metric}"]
        check.baseline = result.metrics.get(f"baseline_test_{check.metric}", float("nan"))
        check.seconds = result.metrics["seconds"]
        check.problems += check_zip(result.zip_uri, dataset, min_auc)
        if baseline:
            check.problems += _gate_problems(result.zip_uri, baseline, gate)
    failed = [c for c in checks if c.problems]
    if failed:
        details = "; ".join(f"{c.variant}: {' | '.join(c.problems)}" for c in failed)
        raise NetfabError(f"ci failed for {len(failed)} of {len(checks)} variant(s): {details}")
    return checks


def check_zip(zip_uri: str, dataset: str, min_auc: float) -> list[str]:
    """Every problem found in one model zip (an empty list when it is sound)."""
    try:
        package = model_zip.ModelZip(zip_uri)  # fetched, opened and verified once for every check
    except NetfabError as error:
        return [str(error)]
    with package:
        problems = []
        epochs = list(_csv_rows(package.text("metrics.csv")))
        if not epochs:
            problems.append("metrics.csv has no epochs")
        for row in epochs:
            bad = [k for k, v in row.items() if v != "" and not math.isfinite(float(v))]  # test: best row only
            if bad:
                problems.append(f"metrics.csv epoch {row['epoch']}: non-finite {', '.join(bad)}")
        config_json = package.json("config.json")
        result = config_json["result"]
        task = TASKS[config_json["values"].get("task", "binary")]
        if "test_auc" in result and task is TASKS["binary"]:
            if not result["test_auc"] >= min_auc:
                problems.append(f"test AUC {result['test_auc']:.4f} is below the sanity floor {min_auc}")
        else:
            figure, baseline = result[f"test_{task.monitor_exact}"], result[f"baseline_test_{task.monitor_exact}"]
            if not (figure > baseline if task.higher_is_better else figure < baseline):
                problems.append(f"test {task.monitor_exact} {figure:.4f} is no better than a trivial "
                                f"model's {baseline:.4f}")
        problems += _check_saved_model(package, config_from_values(config_json["values"]), dataset)
    return problems


def _gate_problems(zip_uri: str, baseline: str, gate) -> list[str]:
    """fab evaluate's gate of a zip against the baseline, on the zip's test split; [] when it passes."""
    from netfab.train.evaluate import Gate, evaluate_zips

    try:
        report = evaluate_zips(zip_uri, baseline, gate=gate or Gate(),
                               output_uri=storage.join(zip_uri.rsplit("/", 1)[0], "evaluation"))
    except NetfabError as error:
        return [f"evaluation against {baseline} failed: {error}"]
    return [f"worse than the baseline {baseline}: {'; '.join(report.failures)}"] if report.failures else []


def _check_saved_model(package: model_zip.ModelZip, config, dataset: str) -> list[str]:
    """The SavedModel in a fresh process must agree with model.keras on the dataset's first rows."""
    import models
    from data.loading import first_rows
    from models.frontend import raw_columns
    from netfab.storage import dataset_files

    first_file = dataset_files(dataset)[0]
    # The fresh process opens the zip on its own: that is what proves the zip stands alone.
    fresh = subprocess.run([sys.executable, "-m", "netfab.serve.saved_model", str(package.uri),
                            str(first_file), "--rows", str(CHECK_ROWS)],
                           capture_output=True, text=True, timeout=300)
    if fresh.returncode != 0:
        last = (fresh.stderr.strip().splitlines() or ["no output"])[-1]
        return [f"SavedModel did not load and predict in a fresh process: {last}"]
    (served,) = map(np.array, json.loads(fresh.stdout).values())  # the one output: probability or value

    features = raw_columns(first_rows(first_file, CHECK_ROWS), config)  # nulls as the signature takes them
    with tempfile.TemporaryDirectory(prefix="netfab-ci-") as tmp:
        folder = package.extract(tmp)
        expected = models.load(folder / "model.keras").predict(features, verbose=0)
    if served.shape != expected.shape or not np.allclose(served, expected, atol=TOLERANCE, equal_nan=True):
        return [f"SavedModel and model.keras disagree on the first {CHECK_ROWS} rows: "
                f"{np.round(served, 5).tolist()} vs {np.round(expected, 5).tolist()}"]
    return []


def _csv_rows(text: str):
    import csv
    import io

    yield from csv.DictReader(io.StringIO(text))


def format_report(checks: list[VariantCheck]) -> str:
    """A row per variant: its task, the test figure that matters against a trivial model's, the
    training time, the zip."""
    lines = [f"{'variant':<16} {'task':<10} {'test figure':<17} {'model':>7} {'trivial':>7} {'seconds':>7}  model zip"]
    lines += [f"{c.variant:<16} {c.task:<10} {c.metric:<17} {c.figure:>7.4f} {c.baseline:>7.4f} "
              f"{c.seconds:>7.0f}  {c.zip_uri}" for c in checks]
    return "\n".join(lines)
