"""What TPE with median pruning buys over random search without pruning, on a fixed trial budget.

Usage: python benchmarks/tune_efficiency.py [--trials 10] [--epochs 10] [--seeds 3] [--rows 2000]
                                           [--startup-trials 5]

For each seed, in the same run and alternating which goes first (the machine's load drifts):
  baseline  `fab tune --sampler=random --pruner=none`
  candidate `fab tune --sampler=tpe --pruner=median`
each a study of --trials trials of `fab train` (NET_EPOCHS=--epochs) over the shipped deep_v1
search space, on the bundled 2K fixture or, with --rows N, a generated fixture of N rows. It
prints, per study, the best validation AUC (what tuning selects on; test AUC is never used) and
the total trial-seconds (wall seconds of every trial's `fab train`, pruned ones included), then
the medians over the seeds with the ratio candidate / baseline (and the mean seconds of a
finished and of a pruned trial), and the floor: the candidate's
median best validation AUC at least the baseline's, with at most 60% of its trial-seconds.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from netfab.tune.study import StudySpec  # noqa: E402  (after the path)

ARMS = {"random, no pruning": ("random", "none"), "TPE + median pruning": ("tpe", "median")}


def run_study(output: Path, name: str, sampler: str, pruner: str, args, dataset: str) -> dict:
    from netfab.study_storage import open_storage
    from netfab.tune.records import trial_records
    from netfab.tune.study import load_optuna_study, read_spec

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NET_")},
           "NET_EPOCHS": str(args.epochs), "PYTHONPATH": str(PROJECT)}
    fab = str(Path(sys.executable).with_name("fab"))
    started = time.perf_counter()
    subprocess.run([fab, "tune", f"--trials={args.trials}", f"--study={name}", f"--output={output}",
                    f"--seed={name.rsplit('-', 1)[1]}", f"--sampler={sampler}", f"--pruner={pruner}",
                    f"--startup-trials={args.startup_trials}", f"--dataset={dataset}"],
                   cwd=PROJECT, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    spec = read_spec(str(output / name))
    records = trial_records(load_optuna_study(spec, open_storage(spec.storage_url)).get_trials()).values()
    ok = [r for r in records if r["status"] == "ok"]
    return {"best_val": max(r["validation_auc"] for r in ok),
            "test_of_best": max(ok, key=lambda r: r["validation_auc"])["test_auc"],
            "trial_seconds": sum(r["seconds"] for r in records),
            "epochs": sum(r["epochs"] for r in records), "wall": wall,
            "seconds_ok": [r["seconds"] for r in ok],
            "seconds_pruned": [r["seconds"] for r in records if r["status"] == "pruned"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--startup-trials", type=int, default=StudySpec.startup_trials,
                        help="random trials before TPE models, finished ones before median prunes "
                             "(default: fab tune's)")
    parser.add_argument("--rows", type=int, default=2000, help="2000: the bundled fixture; more: generated")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="netfab-bench-") as tmp:
        output = Path(tmp)
        from data.fixture import FIXTURE_PATH, FIXTURE_ROWS, write_fixture

        dataset = str(FIXTURE_PATH if args.rows == FIXTURE_ROWS else
                      write_fixture(output / f"fixture_{args.rows}.json", args.rows).path)
        results = {arm: [] for arm in ARMS}
        for seed in range(args.seeds):
            order = list(ARMS) if seed % 2 == 0 else list(reversed(ARMS))
            for arm in order:
                sampler, pruner = ARMS[arm]
                result = run_study(output, f"{sampler}-{pruner}-{seed}", sampler, pruner, args, dataset)
                results[arm].append(result)
                print(f"  seed {seed} {arm:<22} best validation AUC {result['best_val']:.4f}  "
                      f"trial-seconds {result['trial_seconds']:6.0f}  pruned {result['pruned']:2d}  "
                      f"epochs {result['epochs']:3d}", flush=True)

    print(f"\n{args.trials} trials x {args.epochs} epochs, {args.seeds} seeds, deep_v1 space, "
          f"{args.rows:,} rows, {os.cpu_count()} cores (shared); startup trials {args.startup_trials}")
    print(f"{'arm':<22} {'median best val AUC':>20} {'(test AUC of it)':>17} {'median trial-s':>15} "
          f"{'ratio':>6} {'pruned':>7} {'epochs':>7} {'s/finished':>11} {'s/pruned':>9}")
    medians = {}
    for arm, runs in results.items():
        medians[arm] = (statistics.median(r["best_val"] for r in runs),
                        statistics.median(r["trial_seconds"] for r in runs))
        test = statistics.median(r["test_of_best"] for r in runs)
        ratio = medians[arm][1] / medians[next(iter(ARMS))][1]
        finished = [s for r in runs for s in r["seconds_ok"]]
        pruned = [s for r in runs for s in r["seconds_pruned"]]
        print(f"{arm:<22} {medians[arm][0]:>20.4f} {test:>17.4f} {medians[arm][1]:>15.0f} "
              f"{ratio:>5.2f}x {len(pruned):>7} {sum(r['epochs'] for r in runs):>7} "
              f"{statistics.mean(finished):>11.1f} {statistics.mean(pruned) if pruned else float('nan'):>9.1f}")
    (base_auc, base_s), (cand_auc, cand_s) = medians.values()
    met = cand_auc >= base_auc and cand_s <= 0.6 * base_s
    print(f"floor (TPE+pruning: median best val AUC >= random's, trial-seconds <= 60%): "
          f"{'met' if met else 'NOT met'} ({cand_auc:.4f} vs {base_auc:.4f}, "
          f"{cand_s / base_s:.0%} of the trial-seconds)")


if __name__ == "__main__":
    main()
