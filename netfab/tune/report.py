"""What a study leaves for people, rebuilt from its storage at any time (`fab tune --report`).

    from netfab.tune.report import render
    print(render(spec, study))     # leaderboard.csv, the pictures; the summary naming the best trial

    <study>/leaderboard.csv   every trial, best validation AUC first, with its reproduce command
    <study>/study.png         validation AUC of each finished trial against each value
    <study>/history.png       Optuna's optimisation history: each trial's value, the best so far
    <study>/importances.png   Optuna's parameter importances (fANOVA over the finished trials)
    <study>/curves.png        Optuna's intermediate values: every trial's validation AUC per epoch

Trials are ranked on their validation AUC (the split that chose their best epoch); the test AUC
is shown beside it and never used to choose, so it stays an honest estimate for the winner.
"""
import csv
import io
import json
import math
import tempfile
import warnings
from pathlib import Path

from netfab import storage
from netfab.tune.records import trial_records

METRIC = "validation_auc"  # what ranks trials; higher is better
RESULT_COLUMNS = ("validation_auc", "validation_loss", "test_auc", "test_loss", "best_epoch", "epochs",
                  "curve", "seconds", "train_seconds", "status", "error", "worker", "host", "gpu", "zip_uri",
                  "command")
PICTURES = ("study.png", "history.png", "importances.png", "curves.png")


def render(spec, study) -> str:
    """Write the leaderboard and every picture from the study's storage; the summary."""
    records = trial_records(study.get_trials(deepcopy=False))
    write_leaderboard(spec, records)
    notes = []
    if any(r["status"] == "ok" for r in records.values()):
        plot_study(spec, records)
        notes = plot_optuna(spec, study)
    return "\n".join([summarize(spec, records), *notes])


def ranked(records: dict[int, dict]) -> list[dict]:
    """Finished trials, best validation AUC first; then pruned ones, best curve first; the rest
    (failed, lost, running) by number."""
    ok = sorted((r for r in records.values() if r["status"] == "ok"), key=lambda r: -r[METRIC])
    pruned = sorted((r for r in records.values() if r["status"] == "pruned"),
                    key=lambda r: -max(r["curve"], default=0))
    rest = sorted((r for r in records.values() if r["status"] not in ("ok", "pruned")),
                  key=lambda r: r["trial"])
    return ok + pruned + rest


def write_leaderboard(spec, records: dict[int, dict]) -> str:
    """leaderboard.csv: trial, every sampled value, metrics, status, zip URI, reproduce command."""
    keys = list(spec.space)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["rank", "trial", *keys, *RESULT_COLUMNS])
    for rank, record in enumerate(ranked(records), 1):
        values = [_cell(record["values"].get(k)) for k in keys]
        writer.writerow([rank if record["status"] == "ok" else "", record["trial"], *values,
                         *(_cell(record.get(c)) for c in RESULT_COLUMNS)])
    return storage.publish_text(text.getvalue(), f"{spec.folder}/leaderboard.csv")


def plot_study(spec, records: dict[int, dict]) -> str:
    """study.png: one panel per hyperparameter, validation AUC of every trial against its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in records.values() if r["status"] == "ok"]
    dimensions = spec.search_space().dimensions
    columns = min(3, len(dimensions))
    rows = math.ceil(len(dimensions) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.6 * rows),
                                constrained_layout=True, squeeze=False)
    best = max(ok, key=lambda r: r[METRIC]) if ok else None
    for axis, (key, dim) in zip(axes.flat, dimensions.items()):
        if dim.kind == "choice":  # categorical axis, in the order of the file
            labels = [_cell(v) for v in dim.values]
            position = {label: i for i, label in enumerate(labels)}
            xs = [position[_cell(r["values"][key])] for r in ok]
            axis.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
            axis.set_xlim(-0.5, len(labels) - 0.5)
        else:
            xs = [r["values"][key] for r in ok]
            if dim.kind == "log_uniform":
                axis.set_xscale("log")
            axis.axvspan(*dim.values, color="grey", alpha=0.06, label="searched range")
        axis.scatter(xs, [r[METRIC] for r in ok], alpha=0.7)
        if best:
            bx = xs[ok.index(best)]
            axis.scatter([bx], [best[METRIC]], marker="*", s=220, color="crimson",
                         label=f"best: trial {best['trial']}")
            axis.legend(fontsize=7)
        axis.set_xlabel(key)
        axis.set_ylabel("validation AUC")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(dimensions):]:
        axis.set_visible(False)
    others = len(records) - len(ok)
    figure.suptitle(f"study {spec.name}: {spec.variant}, {len(ok)} finished trials"
                    + (f" ({others} pruned, failed or running: not shown)" if others else ""))
    return _publish_figure(figure, spec, "study.png")


def plot_optuna(spec, study) -> list[str]:
    """history.png, importances.png and curves.png, drawn by optuna.visualization.matplotlib;
    a note for a picture the study cannot have yet (importances need 2+ finished trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import optuna.visualization.matplotlib as optuna_plots
    from optuna.exceptions import ExperimentalWarning

    pictures = {"history.png": lambda: optuna_plots.plot_optimization_history(study, target_name="validation AUC"),
                "importances.png": lambda: optuna_plots.plot_param_importances(study),
                "curves.png": lambda: optuna_plots.plot_intermediate_values(study)}
    notes = []
    for name, draw in pictures.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            try:
                axis = draw()
            except (ValueError, RuntimeError) as error:  # e.g. one finished trial: no importances
                notes.append(f"{name} not drawn: {error}")
                continue
        if name == "curves.png":  # Optuna's generic "Step" / "Intermediate Value"
            axis.set_xlabel("epoch")
            axis.set_ylabel("validation AUC (pruned trials end early)")
        _publish_figure(axis.figure, spec, name)
    return notes


def _publish_figure(figure, spec, name: str) -> str:
    import matplotlib.pyplot as plt

    with tempfile.TemporaryDirectory(prefix="netfab-study-") as tmp:
        path = Path(tmp) / name
        figure.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(figure)
        return storage.publish_file(path, f"{spec.folder}/{name}")


def edge_warnings(spec, best: dict) -> list[str]:
    """A best value in the outer tenth of its range: the optimum may lie outside the space."""
    found = []
    for key, dim in spec.search_space().dimensions.items():
        value = best["values"][key]
        side = dim.at_edge(tuple(value) if isinstance(value, list) else value)
        if side:
            found.append(f"warning: best {key} = {json.dumps(value)} sits at the {side} edge of "
                            f"its range ({dim.describe()}); widen the range in {spec.space_file} "
                            f"and run a new study")
    return found


def summarize(spec, records: dict[int, dict]) -> str:
    order = ranked(records)
    ok = [r for r in order if r["status"] == "ok"]
    failed = [r for r in order if r["status"] in ("failed", "lost")]
    count = {status: sum(1 for r in order if r["status"] == status)
             for status in ("ok", "pruned", "failed", "lost", "running", "waiting")}
    lines = [f"study {spec.name} ({spec.sampler} sampler, {spec.pruner} pruner): "
             + ", ".join(f"{n} {status}" for status, n in count.items() if n or status == "ok")
             + f" -> {spec.folder}"]
    if ok:
        best, worst = ok[0], ok[-1]
        values = ", ".join(f"{k}={json.dumps(v)}" for k, v in best["values"].items())
        lines += [f"best trial {best['trial']}: validation AUC {best['validation_auc']:.4f}, "
                  f"test AUC {best['test_auc']:.4f} ({values})",
                  f"  model zip  {best['zip_uri']}",
                  f"  reproduce  {best['command']}",
                  f"worst trial {worst['trial']}: validation AUC {worst['validation_auc']:.4f}"]
        lines += edge_warnings(spec, best)
    for record in failed:
        lines.append(f"trial {record['trial']} {record['status']}: {record['error']}")
    lines.append(f"leaderboard {spec.folder}/leaderboard.csv, pictures "
                 + ", ".join(f"{spec.folder}/{name}" for name in PICTURES))
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
