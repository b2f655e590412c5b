"""`fab evaluate`: a candidate model zip beside a baseline on the same rows, and a gate on the difference.

    from netfab.train.evaluate import Gate, check_gate, evaluate_zips, format_table
    report = evaluate_zips("new/model.zip", "live/model.zip", slice_column="country",
                           gate=Gate(max_auc_drop=0.005), output_uri="artifacts/evaluation")
    print(format_table(report))
    check_gate(report)               # GateError naming each threshold the candidate failed, and by how much

Rows: by default the candidate's test split, rebuilt from the data it was trained on
(zip_test_split.py); with dataset_uri, every row of that dataset. Both zips' SavedModels score the
same rows (zip_scores.py). A baseline trained on the same data but split another way has trained
on some of the candidate's test rows, so it is refused: its figures would flatter it.
Per model: AUC, log loss, Brier score, calibration (reliability bins, expected calibration error),
score histograms by label; per slice of one column: rows, label rate, AUC and log loss; with a
baseline, the AUC change with its 95% interval (DeLong's paired method): the gate reads the change
itself, the interval says whether it is larger than chance on this many rows.
evaluation.json and evaluation.png are written to output_uri whether or not the gate passes.
The gate: the candidate's AUC at most max_auc_drop below the baseline's, its log loss at most
max_log_loss_rise above; with or without a baseline, optional floors min_auc and max_calibration_error.
"""
import dataclasses
import json
import logging
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from netfab import model_zip, storage
from netfab.config import column_roles, config_from_values
from netfab.errors import ConfigError, DataError, NetfabError
from netfab.train.metrics import auc_difference, log_loss, roc_auc

log = logging.getLogger(__name__)
CALIBRATION_BINS = 10  # equal-width score bins of the reliability diagram
HISTOGRAM_BINS = 20
MAX_SLICES = 12  # a slice column's most frequent values; the rest are one "(other)" slice
NUMERIC_SLICES = 4  # a numeric slice column is cut at its quartiles on the evaluated rows
MIN_SLICE_ROWS = 30  # fewer rows, or one class only: the slice's AUC is not reported (it would be noise)
Z95 = 1.959964  # a 95% interval is +- this many standard errors
SPLIT_KEYS = ("seed", "validation_fraction", "test_fraction", "sample_rows")  # what chooses a zip's test rows
FILES = ("evaluation.json", "evaluation.png")


class GateError(NetfabError):
    """The candidate is worse than the gate allows."""


@dataclasses.dataclass(frozen=True)
class Gate:
    max_auc_drop: float = 0.005  # AUC the candidate may lose against the baseline
    max_log_loss_rise: float = 0.01  # log loss it may gain against the baseline
    min_auc: float | None = None  # a floor, baseline or not
    max_calibration_error: float | None = None  # a ceiling on its expected calibration error


@dataclasses.dataclass
class ModelFigures:
    role: str  # candidate | baseline
    uri: str
    variant: str
    run_id: str
    auc: float
    log_loss: float
    brier: float
    calibration_error: float  # expected calibration error: mean |score - positive rate| over the score bins, by rows
    reliability: list[dict]  # per score bin: low, high, rows, mean_score, positive_rate
    histogram: dict  # edges, and the row count per bin of the positives and of the negatives
    scores: np.ndarray = dataclasses.field(repr=False)  # not written: the figures above are


@dataclasses.dataclass
class Evaluation:
    rows: int
    rows_from: str  # which rows, in words
    label_rate: float
    gate: Gate
    candidate: ModelFigures
    baseline: ModelFigures | None
    slice_column: str
    slices: list[dict]  # value, rows, label_rate, and per model its auc (None: too few rows) and log_loss
    auc_change: dict | None  # with a baseline: value, standard_error (DeLong, paired), low and high of its 95% interval
    failures: list[str]  # each threshold failed, and by how much
    notes: list[str]  # what a reader should know about the rows
    labels: np.ndarray = dataclasses.field(repr=False)  # of the rows, for the plot's ROC curves
    outputs: list[str] = dataclasses.field(default_factory=list)  # the files written


def evaluate_zips(model_uri: str, baseline_uri: str | None = None, dataset_uri: str | None = None,
                  slice_column: str = "", gate: Gate = Gate(), output_uri: str = "artifacts/evaluation") -> Evaluation:
    """Score the candidate (and the baseline) on the same rows; write evaluation.json and .png."""
    _check_gate_values(gate)
    with tempfile.TemporaryDirectory(prefix="netfab-evaluate-") as tmp, model_zip.ModelZip(model_uri) as candidate:
        baseline = model_zip.ModelZip(baseline_uri) if baseline_uri else None
        try:
            packages = [candidate] + ([baseline] if baseline else [])
            notes = []
            if baseline and not dataset_uri:
                notes += _baseline_rows_check(candidate, baseline)
            # 1. The rows: every column either model reads, and the slice column.
            config = _reading_config(packages, slice_column, dataset_uri)
            if dataset_uri:
                from netfab.train.zip_test_split import dataset_rows

                rows = dataset_rows(dataset_uri, config)
                rows_from = f"{dataset_uri}, every row"
                notes.append("rows of --dataset: if either model trained on some of them, its figures flatter it")
            else:
                from netfab.train.zip_test_split import rebuild_test_split

                rows = rebuild_test_split(candidate, config=config)
                rows_from = f"the candidate's test split, rebuilt from {rows.dataset}"
            labels = rows.labels
            if len(np.unique(labels)) < 2:
                raise DataError(f"{rows_from} holds only label {labels[0]:g}: AUC needs both classes; "
                                f"evaluate on other rows (--dataset=URI)")
            log.info("evaluating on %s rows of %s", f"{len(rows):,}", rows_from)

            # 2. Each model's scores and figures.
            from netfab.train.zip_scores import score_saved_model

            figures = []
            for role, package in zip(("candidate", "baseline"), packages):
                folder = package.extract(Path(tmp) / role)
                scores = score_saved_model(folder / "saved_model", rows.columns)
                figures.append(_figures(role, package, labels, scores))
                log.info("%s: AUC %.4f, log loss %.4f", role, figures[-1].auc, figures[-1].log_loss)
        finally:
            if baseline:
                baseline.close()
    report = Evaluation(len(rows), rows_from, float(labels.mean()), gate, figures[0],
                        figures[1] if baseline_uri else None, slice_column,
                        _slices(rows.columns[slice_column], labels, figures) if slice_column else [],
                        _auc_change(labels, figures), [], notes, labels)
    report.failures = gate_failures(report)
    report.outputs = _write(report, output_uri)
    return report


def _auc_change(labels: np.ndarray, figures: list[ModelFigures]) -> dict | None:
    """The candidate's AUC minus the baseline's on the same rows, with its 95% interval."""
    if len(figures) < 2:
        return None
    value, error = auc_difference(labels, figures[0].scores, figures[1].scores)
    return {"value": value, "standard_error": error, "low": value - Z95 * error, "high": value + Z95 * error}


def gate_failures(report: Evaluation) -> list[str]:
    """Each threshold of the report's gate the candidate fails, and by how much (empty: it passes)."""
    gate, new, old = report.gate, report.candidate, report.baseline
    failures = []
    if old is not None:
        if old.auc - new.auc > gate.max_auc_drop:
            failures.append(f"AUC {new.auc:.4f} is {old.auc - new.auc:.4f} below the baseline's {old.auc:.4f} "
                            f"(--max-auc-drop={gate.max_auc_drop:g})")
        if new.log_loss - old.log_loss > gate.max_log_loss_rise:
            failures.append(f"log loss {new.log_loss:.4f} is {new.log_loss - old.log_loss:.4f} above the "
                            f"baseline's {old.log_loss:.4f} (--max-log-loss-rise={gate.max_log_loss_rise:g})")
    if gate.min_auc is not None and new.auc < gate.min_auc:
        failures.append(f"AUC {new.auc:.4f} is {gate.min_auc - new.auc:.4f} below --min-auc={gate.min_auc:g}")
    if gate.max_calibration_error is not None and new.calibration_error > gate.max_calibration_error:
        failures.append(f"calibration error {new.calibration_error:.4f} is "
                        f"{new.calibration_error - gate.max_calibration_error:.4f} above "
                        f"--max-calibration-error={gate.max_calibration_error:g}")
    return failures


def check_gate(report: Evaluation) -> None:
    """GateError (one line) when the candidate failed a threshold."""
    if report.failures:
        against = f" against {report.baseline.uri}" if report.baseline else ""
        raise GateError(f"candidate {report.candidate.uri} fails the gate{against} on {report.rows:,} rows: "
                        f"{'; '.join(report.failures)}; figures in {report.outputs[0]}")


def _check_gate_values(gate: Gate) -> None:
    for name, value in dataclasses.asdict(gate).items():
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"--{name.replace('_', '-')}={value} must be a finite number")


def _baseline_rows_check(candidate, baseline) -> list[str]:
    """DataError if the baseline trained on the candidate's test rows; notes when that cannot be known."""
    new, old = (p.json("dataset_metadata.json") for p in (candidate, baseline))
    if new["content_sha256"] != old["content_sha256"]:
        return [f"the baseline was trained on other data ({old['source']}) than the candidate's test split "
                f"comes from: if those rows overlap, the baseline's figures flatter it; --dataset=URI with "
                f"rows neither model trained on settles it"]
    new_values, old_values = (p.json("config.json")["values"] for p in (candidate, baseline))
    differ = [f"{key} {old_values.get(key)} vs {new_values.get(key)}" for key in SPLIT_KEYS
              if old_values.get(key) != new_values.get(key)]
    if differ:
        raise DataError(f"the baseline {baseline.uri} was trained on the same data split another way "
                        f"({', '.join(differ)}), so some of the candidate's test rows were its training rows "
                        f"and would flatter it: pass --dataset=URI with rows neither model trained on")
    return []


def _reading_config(packages, slice_column: str, dataset_uri: str | None):
    """The candidate's config reading every column either model takes, and the slice column."""
    configs = [config_from_values(p.json("config.json")["values"]) for p in packages]
    for config, package in zip(configs, packages):
        if config.task != "binary":  # AUC, log loss, Brier, calibration: one probability per row
            raise ConfigError(f"{package.uri} is a {config.task} model; fab evaluate compares task = binary "
                              f"models for now: compare the test figures its zip records (fab inspect)")
    roles: dict[str, str] = {}
    for config, package in zip(configs, packages):
        for column, role in column_roles(config).items():
            if roles.setdefault(column, role) != role:
                raise ConfigError(f"column {column!r} is read as {roles[column]} by one model and as {role} by "
                                  f"{package.uri}: they cannot be scored from the same rows")
    config = configs[0]
    if slice_column == config.label_column:
        raise ConfigError(f"--slice={slice_column} is the label: slice by a feature or another column")
    if slice_column and slice_column not in roles:  # not a feature: read as its first value's type
        roles[slice_column] = _column_role(slice_column, packages[0], dataset_uri)
    pick = lambda role: tuple(c for c, r in roles.items() if r == role)  # noqa: E731
    return dataclasses.replace(config, categorical_columns=pick("categorical_columns"),
                               list_columns=pick("list_columns"), numeric_columns=pick("numeric_columns"),
                               text_columns=pick("text_columns"))


def _column_role(column: str, candidate, dataset_uri: str | None) -> str:
    from data.loading import first_rows

    uri = dataset_uri or candidate.json("dataset_metadata.json")["source"]
    first = first_rows(storage.dataset_files(uri)[0], 1)
    if not first or column not in first[0]:
        columns = ", ".join(first[0]) if first else "none"
        raise DataError(f"--slice={column}: the rows of {uri} have no such column; they have: {columns}")
    value = first[0][column]
    return "numeric_columns" if isinstance(value, (int, float)) and not isinstance(value, bool) else "categorical_columns"


def _figures(role: str, package, labels: np.ndarray, scores: np.ndarray) -> ModelFigures:
    config = package.json("config.json")
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    bins = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, CALIBRATION_BINS - 1)
    reliability, error = [], 0.0
    for index in range(CALIBRATION_BINS):
        inside = bins == index
        count = int(inside.sum())
        mean_score = float(scores[inside].mean()) if count else None
        positive_rate = float(labels[inside].mean()) if count else None
        if count:
            error += count / len(scores) * abs(mean_score - positive_rate)
        reliability.append({"low": float(edges[index]), "high": float(edges[index + 1]), "rows": count,
                            "mean_score": mean_score, "positive_rate": positive_rate})
    histogram_edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    positive = labels > 0.5
    histogram = {"edges": histogram_edges.tolist(),
                 "positives": np.histogram(scores[positive], histogram_edges)[0].tolist(),
                 "negatives": np.histogram(scores[~positive], histogram_edges)[0].tolist()}
    return ModelFigures(role, str(package.uri), config["variant"], config["run_id"], roc_auc(labels, scores),
                        log_loss(labels, scores), float(np.mean((scores - labels) ** 2)), float(error),
                        reliability, histogram, scores)


def _slices(values: np.ndarray, labels: np.ndarray, figures: list[ModelFigures]) -> list[dict]:
    """Per value of the slice column (numbers: quartiles): rows, label rate, each model's AUC and log loss."""
    if values.dtype.kind == "f":
        seen = values[~np.isnan(values)]
        edges = np.unique(np.quantile(seen, np.arange(1, NUMERIC_SLICES) / NUMERIC_SLICES)) if len(seen) else []
        names = ([f"<= {edges[0]:.4g}"] + [f"{a:.4g} to {b:.4g}" for a, b in zip(edges, edges[1:])]
                 + [f"> {edges[-1]:.4g}"]) if len(edges) else ["any"]
        names = np.array(names + ["(null)"], dtype=object)
        bins = np.searchsorted(edges, values, side="left")
        bins[np.isnan(values)] = len(names) - 1
        keys, order = names[bins], list(names)
    else:
        keys = np.where(values == "", "(null)", values).astype(object)
        counts = pd.Series(keys).value_counts()
        kept = set(counts.index[:MAX_SLICES])
        keys = np.where(pd.Series(keys).isin(kept), keys, "(other)").astype(object)
        order = list(counts.index[:MAX_SLICES]) + ["(other)"]
    slices = []
    for key in order:
        inside = keys == key
        count = int(inside.sum())
        if not count:
            continue
        entry = {"value": str(key), "rows": count, "label_rate": float(labels[inside].mean())}
        both_classes = 0 < labels[inside].sum() < count
        for model in figures:
            entry[model.role] = {
                "auc": roc_auc(labels[inside], model.scores[inside]) if both_classes and count >= MIN_SLICE_ROWS else None,
                "log_loss": log_loss(labels[inside], model.scores[inside])}
        slices.append(entry)
    return slices


def _record(report: Evaluation) -> dict:
    """evaluation.json: the rows, the gate and its verdict, every figure of each model."""
    from netfab.environment import describe_environment

    def model(figures: ModelFigures | None):
        if figures is None:
            return None
        return {key: value for key, value in dataclasses.asdict(figures).items() if key != "scores"}

    return {"rows": report.rows, "rows_from": report.rows_from, "label_rate": report.label_rate,
            "gate": dataclasses.asdict(report.gate), "passed": not report.failures, "failures": report.failures,
            "notes": report.notes, "candidate": model(report.candidate), "baseline": model(report.baseline),
            "auc_change": report.auc_change, "slice_column": report.slice_column, "slices": report.slices,
            "measured_as": {"calibration_error": f"expected calibration error over {CALIBRATION_BINS} equal-width "
                                                 f"score bins: sum of rows/total x |mean score - positive rate|",
                            "brier": "mean squared difference between score and label",
                            "auc_change": "candidate AUC - baseline AUC; standard error by DeLong's method "
                                          "for two models scoring the same rows; low/high: its 95% interval",
                            "slices": f"AUC only where a slice has both labels and {MIN_SLICE_ROWS}+ rows"},
            "environment": describe_environment(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _write(report: Evaluation, output_uri: str) -> list[str]:
    from netfab.train.plots import plot_evaluation

    with tempfile.TemporaryDirectory(prefix="netfab-evaluation-") as tmp:
        folder = Path(tmp)
        (folder / FILES[0]).write_text(json.dumps(_record(report), indent=1))
        plot_evaluation(report, folder / FILES[1])
        return [storage.publish_file(folder / name, storage.join(output_uri, name)) for name in FILES]


def format_table(report: Evaluation) -> str:
    """The models side by side, the slices, the verdict: what `fab evaluate` prints."""
    models = [m for m in (report.candidate, report.baseline) if m is not None]
    lines = [f"{'model':<10} {'AUC':>7} {'log loss':>9} {'Brier':>7} {'calib. err':>10}  zip"]
    lines += [f"{m.role:<10} {m.auc:>7.4f} {m.log_loss:>9.4f} {m.brier:>7.4f} {m.calibration_error:>10.4f}  {m.uri}"
              for m in models]
    if report.baseline is not None:
        new, old = report.candidate, report.baseline
        lines.append(f"{'change':<10} {new.auc - old.auc:>+7.4f} {new.log_loss - old.log_loss:>+9.4f} "
                     f"{new.brier - old.brier:>+7.4f} {new.calibration_error - old.calibration_error:>+10.4f}")
        change = report.auc_change
        chance = "larger than chance" if change["low"] > 0 or change["high"] < 0 else "within chance"
        lines.append(f"AUC change {change['value']:+.4f}, 95% interval {change['low']:+.4f} to {change['high']:+.4f} "
                     f"(DeLong, paired): {chance}")
    if report.slices:
        def auc(value):
            return f"{value:.4f}" if value is not None else "-"

        width = max(12, *(len(s["value"]) for s in report.slices))
        lines.append("")
        lines.append(f"{report.slice_column:<{width}} {'rows':>7} {'label rate':>10} "
                     + " ".join(f"{m.role + ' AUC':>14}" for m in models))
        lines += [f"{s['value']:<{width}} {s['rows']:>7,} {s['label_rate']:>10.3f} "
                  + " ".join(f"{auc(s[m.role]['auc']):>14}" for m in models) for s in report.slices]
    lines.append("")
    lines.append(f"rows: {report.rows:,}, {report.rows_from}; label rate {report.label_rate:.3f}")
    lines += [f"note: {note}" for note in report.notes]
    lines.append(f"written: {', '.join(report.outputs)}")
    lines.append("gate: " + ("FAILED: " + "; ".join(report.failures) if report.failures else "passed"))
    return "\n".join(lines)
