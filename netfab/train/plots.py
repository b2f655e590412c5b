"""Pictures people look at: train vs test curves of a run (metrics.png)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402


def plot_metrics(rows: list[dict], path: Path, title: str) -> None:
    """Loss and AUC per epoch, train against test, the best test epoch marked."""
    epochs = [row["epoch"] for row in rows]
    best = max(rows, key=lambda row: row["test_auc"])
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for axis, metric in zip(axes, ("loss", "auc")):
        axis.plot(epochs, [row[f"train_{metric}"] for row in rows], marker="o", label="train")
        axis.plot(epochs, [row[f"test_{metric}"] for row in rows], marker="o", label="test")
        axis.axvline(best["epoch"], color="grey", linestyle=":", label=f"best epoch {best['epoch']}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.savefig(path, dpi=100)
    plt.close(figure)
