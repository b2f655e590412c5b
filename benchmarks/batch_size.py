"""Which default batch size: validation AUC against training seconds, on the fixture and on 1M rows.

Usage: python benchmarks/batch_size.py [--sizes 128,256,512,1024,2048] [--big-rows 1000000]
       [--big-epochs 3] [--plot batch_size.png]

Each point is one `fab train` in its own process with the defaults of netconfig.py except
NET_BATCH_SIZE (and, on the big dataset, NET_EPOCHS=--big-epochs): on the bundled 2K fixture as
Jenkins trains it (early stopping on), and on the fixture generator's rows at --big-rows. The
table shows each run's validation AUC of the best epoch (what chooses), its test AUC (reported,
never used to choose) and its seconds; the plot shows validation AUC against seconds.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def fab_train(dataset: Path, env: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="netfab-bench-") as output:
        started = time.monotonic()
        done = subprocess.run([str(Path(sys.executable).with_name("fab")), "train", f"--dataset={dataset}",
                               f"--output={output}"], cwd=PROJECT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
    if done.returncode:
        sys.exit(done.stdout[-2000:] + done.stderr[-2000:])
    found = re.search(r"test AUC ([\d.]+) .*best epoch (\d+) of (\d+) \(validation AUC ([\d.]+)\)", done.stdout)
    fit = [float(s.replace(",", "")) for s in re.findall(r"done in \d+ s \(([\d,]+) rows/s\)", done.stderr)]
    return {"test_auc": float(found.group(1)), "best_epoch": int(found.group(2)),
            "epochs": int(found.group(3)), "validation_auc": float(found.group(4)), "seconds": seconds,
            "rows_per_s": sum(fit) / len(fit)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256,512,1024,2048")
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--big-epochs", type=int, default=3)
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "netfab-bench"))
    parser.add_argument("--plot", default="batch_size.png")
    args = parser.parse_args()
    from data.fixture import FIXTURE_PATH, write_fixture

    big = Path(args.data_dir) / f"rows_{args.big_rows}.json"
    if not big.exists():
        write_fixture(big, args.big_rows)
    base = {k: v for k, v in os.environ.items() if not k.startswith("NET_")} | {"PYTHONPATH": str(PROJECT)}
    rows = []
    for name, dataset, extra in (("fixture 2K", FIXTURE_PATH, {}),
                                 (f"{args.big_rows:,} rows", big, {"NET_EPOCHS": str(args.big_epochs)})):
        for size in args.sizes.split(","):
            result = fab_train(dataset, {**base, **extra, "NET_BATCH_SIZE": size})
            rows.append((name, int(size), result))
            print(f"{name} batch {size}: {result}", flush=True)

    print(f"\n{'dataset':<16} {'batch':>6} {'epochs':>7} {'best':>5} {'seconds':>8} {'rows/s':>9} "
          f"{'val AUC':>8} {'test AUC':>9}")
    for name, size, r in rows:
        print(f"{name:<16} {size:>6} {r['epochs']:>7} {r['best_epoch']:>5} {r['seconds']:>8.0f} "
              f"{r['rows_per_s']:>9,.0f} {r['validation_auc']:>8.4f} {r['test_auc']:>9.4f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for axis, name in zip(axes, dict.fromkeys(n for n, _, _ in rows)):
        points = [(s, r) for n, s, r in rows if n == name]
        axis.plot([r["seconds"] for _, r in points], [r["validation_auc"] for _, r in points], marker="o", linestyle="")
        for size, r in points:
            axis.annotate(str(size), (r["seconds"], r["validation_auc"]), textcoords="offset points", xytext=(4, 4))
        axis.set_title(name)
        axis.set_xlabel("seconds (whole fab train)")
        axis.set_ylabel("validation AUC, best epoch")
        axis.grid(alpha=0.3)
    figure.suptitle("batch size: validation AUC against time")
    figure.savefig(args.plot, dpi=100)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
