"""Pictures people look at: train vs validation curves of a run, and its test figure (metrics.png)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402


def plot_metrics(rows: list[dict], path: Path, title: str) -> None:
    """Loss and AUC per epoch, train against validation, the best epoch marked with its test figure."""
    epochs = [row["epoch"] for row in rows]
    best = max(rows, key=lambda row: row["validation_auc"])
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for axis, metric in zip(axes, ("loss", "auc")):
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
