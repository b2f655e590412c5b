"""Every task against its trivial model, deep_v1 against dcn_v2: the fixture's figure per task.

Usage: python benchmarks/tasks.py [--rows 2000] [--seeds 1] [--plot tasks.png]

For each task variant of variant_config.json (binary: deep_v1's target; trip_type_v1, tags_v1,
review_score_v1) and each network (deep_v1, dcn_v2), one `fab train` (netfab.train.loop.train, in
this process) on the fixture generator's first --rows rows (2000: the bundled fixture), per seed.
The table gives the test figure that chooses the epoch for the task (binary: AUC, multiclass:
log loss, multilabel: micro AUC, regression: RMSE), the trivial model's on the same test split
(the training split's label rate, class or tag frequencies, mean: measured in the same run), their
ratio, and the task's other headline figure; the plot shows the figure per task and network with
the trivial model's as a line.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

TASK_VARIANTS = {"binary": "deep_v1", "multiclass": "trip_type_v1", "multilabel": "tags_v1",
                 "regression": "review_score_v1"}
NETWORKS = ("deep_v1", "dcn_v2")
SECOND_FIGURE = {"binary": "loss", "multiclass": "accuracy", "multilabel": "macro_f1", "regression": "r2"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=1, help="seeds per cell (the mean is shown)")
    parser.add_argument("--plot", default="tasks.png")
    args = parser.parse_args()
    import keras

    from data.fixture import FIXTURE_PATH, FIXTURE_ROWS, write_fixture
    from netfab.config import load_config
    from netfab.tasks import TASKS
    from netfab.train.loop import train

    work = Path(tempfile.mkdtemp(prefix="netfab-bench-tasks-"))
    dataset = FIXTURE_PATH if args.rows == FIXTURE_ROWS else write_fixture(work / "rows.json", args.rows).path
    results = []
    for task, variant in TASK_VARIANTS.items():
        metric = TASKS[task].monitor_exact
        for network in NETWORKS:
            runs = []
            for seed in range(1, args.seeds + 1):
                keras.backend.clear_session()
                config = load_config(variant, environ={"NET_NETWORK": network, "NET_SEED": str(seed)})
                started = time.monotonic()
                metrics = train(config, str(dataset), str(work / "out")).metrics
                runs.append((metrics, time.monotonic() - started))
            mean = lambda key: statistics.mean(m[key] for m, _ in runs)  # noqa: E731
            row = {"task": task, "network": network, "metric": metric, "model": mean(f"test_{metric}"),
                   "trivial": mean(f"baseline_test_{metric}"), "second": SECOND_FIGURE[task],
                   "second_model": mean(f"test_{SECOND_FIGURE[task]}"),
                   "second_trivial": mean(f"baseline_test_{SECOND_FIGURE[task]}"),
                   "seconds": statistics.mean(s for _, s in runs), "higher": TASKS[task].higher_is_better}
            results.append(row)
            print(f"{task} {network}: {row}", flush=True)

    print(f"\n{args.rows:,} rows, {args.seeds} seed(s) per cell; ratio = model / trivial "
          f"(above 1 is better for AUC, below 1 for loss and RMSE)")
    print(f"{'task':<11} {'network':<8} {'figure':<10} {'model':>7} {'trivial':>8} {'ratio':>6}  "
          f"{'also':<9} {'model':>7} {'trivial':>8} {'seconds':>8}")
    for r in results:
        print(f"{r['task']:<11} {r['network']:<8} {r['metric']:<10} {r['model']:>7.4f} {r['trivial']:>8.4f} "
              f"{r['model'] / r['trivial']:>6.3f}  {r['second']:<9} {r['second_model']:>7.4f} "
              f"{r['second_trivial']:>8.4f} {r['seconds']:>8.1f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(TASK_VARIANTS), figsize=(16, 3.8), constrained_layout=True)
    for axis, task in zip(axes, TASK_VARIANTS):
        cells = [r for r in results if r["task"] == task]
        axis.bar([r["network"] for r in cells], [r["model"] for r in cells], color=["tab:blue", "tab:orange"])
        axis.axhline(cells[0]["trivial"], color="grey", linestyle="--", label="trivial model")
        axis.set_title(f"{task}: test {cells[0]['metric']}, {'higher' if cells[0]['higher'] else 'lower'} is better",
                       fontsize=10)
        axis.legend(loc="lower right")
        axis.grid(alpha=0.3, axis="y")
    figure.suptitle(f"each task against its trivial model, {args.rows:,} fixture rows")
    figure.savefig(args.plot, dpi=100)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
