"""Pictures people look at: train vs validation curves of a run, and its test figure (metrics.png)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402


def plot_metrics(rows: list[dict], path: Path, title: str, metric: str = "auc",
                 best_epoch: int | None = None) -> None:
    """Loss and the task's epoch metric (auc, accuracy, rmse: netfab/tasks.py) per epoch, train
    against validation, the best epoch (by default the best validation AUC) marked with its test figure."""
    epochs = [row["epoch"] for row in rows]
    best = (next(row for row in rows if row["epoch"] == best_epoch) if best_epoch else
            max(rows, key=lambda row: row[f"validation_{metric}"]))
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for axis, metric in zip(axes, ("loss", metric)):
        axis.plot(epochs, [row[f"train_{metric}"] for row in rows], marker="o", label="train")
        axis.plot(epochs, [row[f"validation_{metric}"] for row in rows], marker="o", label="validation")
        axis.axvline(best["epoch"], color="grey", linestyle=":", label=f"best epoch {best['epoch']}")
        if best.get(f"test_{metric}") not in (None, ""):  # scored once, with the best epoch's weights
            axis.plot([best["epoch"]], [best[f"test_{metric}"]], marker="*", markersize=14,
                      linestyle="", color="black", label=f"test {best[f'test_{metric}']:.4f}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_evaluation(report, path: Path) -> None:
    """evaluation.png: ROC curves, reliability diagram, score histograms by label, per-slice AUC
    (or the headline figures), the candidate beside the baseline (netfab.train.evaluate.Evaluation)."""
    import numpy as np

    models = [m for m in (report.candidate, report.baseline) if m is not None]
    styles = {"candidate": {"color": "tab:blue"}, "baseline": {"color": "tab:orange", "linestyle": "--"}}
    figure, ((roc, reliability), (histogram, summary)) = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    for model in models:
        labels = report.labels[np.argsort(-model.scores, kind="mergesort")]
        positives = np.cumsum(labels)
        negatives = np.cumsum(1 - labels)
        roc.plot(np.r_[0, negatives / negatives[-1]], np.r_[0, positives / positives[-1]],
                 label=f"{model.role} AUC {model.auc:.4f}", **styles[model.role])
        bins = [b for b in model.reliability if b["rows"]]
        reliability.plot([b["mean_score"] for b in bins], [b["positive_rate"] for b in bins], marker="o",
                         label=f"{model.role} (calibration error {model.calibration_error:.3f})", **styles[model.role])
        edges = np.array(model.histogram["edges"])
        for name, shade in (("positives", 1.0), ("negatives", 0.45)):
            counts = np.array(model.histogram[name], dtype=float)
            histogram.stairs(counts / max(counts.sum(), 1), edges, alpha=shade,
                             label=f"{model.role}, label {1 if name == 'positives' else 0}", **styles[model.role])
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    reliability.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    reliability.set(xlabel="mean score in bin", ylabel="positive rate in bin", title="reliability")
    histogram.set(xlabel="score", ylabel="share of the label's rows", title="score histograms")
    if report.slices:
        names = [s["value"] for s in report.slices]
        width = 0.8 / len(models)
        for index, model in enumerate(models):
            aucs = [s[model.role]["auc"] if s[model.role]["auc"] is not None else np.nan for s in report.slices]
            summary.bar(np.arange(len(names)) + index * width, aucs, width, label=model.role,
                        color=styles[model.role]["color"])
        summary.set_xticks(np.arange(len(names)) + width * (len(models) - 1) / 2, names, rotation=45, ha="right")
        summary.set(ylabel="AUC", title=f"AUC per {report.slice_column} (blank: too few rows)")
        summary.axhline(0.5, color="grey", linestyle=":")
        summary.set_ylim(0.0, 1.0)
    else:
        metrics = ["auc", "log_loss", "brier", "calibration_error"]
        width = 0.8 / len(models)
        for index, model in enumerate(models):
            summary.bar(np.arange(len(metrics)) + index * width, [getattr(model, m) for m in metrics], width,
                        label=model.role, color=styles[model.role]["color"])
        summary.set_xticks(np.arange(len(metrics)) + width * (len(models) - 1) / 2, metrics)
        summary.set(title="figures")
    for axis in (roc, reliability, histogram, summary):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    verdict = "gate passed" if not report.failures else "gate FAILED"
    figure.suptitle(f"{verdict}: {report.rows:,} rows, {report.rows_from}", fontsize=10)
    figure.savefig(path, dpi=100)
    plt.close(figure)



def plot_drift(report, path: Path) -> None:
    """drift.png: PSI per feature and for the score against the watch/act lines; the score's and the
    most drifted feature's histograms, reference beside observed (netfab.train.drift_report.DriftReport)."""
    import numpy as np

    from netfab.drift.psi import ACT, WATCH

    colours = {"stable": "tab:green", "watch": "tab:orange", "act": "tab:red", "no rows": "grey"}
    shown = [report.score, *report.features]
    figure, (bars, *histograms) = plt.subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)
    bars.barh([f.name for f in shown][::-1], [f.psi for f in shown][::-1],
              color=[colours[f.level] for f in shown][::-1])
    bars.axvline(WATCH, color="tab:orange", linestyle=":", label=f"watch {WATCH}")
    bars.axvline(ACT, color="tab:red", linestyle=":", label=f"act {ACT}")
    bars.set(xlabel="PSI", title=f"drift of {report.rows:,} rows")
    bars.legend()
    for axis, drift in zip(histograms, [report.score, report.features[0]] if report.features else [report.score]):
        positions = np.arange(len(drift.labels))
        axis.bar(positions - 0.2, drift.reference, 0.4, label="reference")
        axis.bar(positions + 0.2, drift.observed, 0.4, label="observed")
        axis.set_xticks(positions, drift.labels, rotation=60, ha="right", fontsize=7)
        axis.set(ylabel="share", title=f"{drift.name}: PSI {drift.psi:.3f} ({drift.level})")
        axis.legend(fontsize=8)
    for axis in (bars, *histograms):
        axis.grid(alpha=0.3)
    figure.suptitle(f"{report.dataset} against {report.model}", fontsize=9)
    figure.savefig(path, dpi=100)
    plt.close(figure)
