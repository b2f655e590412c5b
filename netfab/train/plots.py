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
