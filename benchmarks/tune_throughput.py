"""What a trial costs besides training, and trials/hour with 1 and 2 local workers.

Usage: python benchmarks/tune_throughput.py [--trials 4] [--epochs 1]

Three measurements in the same run, on the bundled fixture:
  1. overhead: `python -c "import netfab.train.loop"` (process start + TensorFlow/Keras imports,
     which a worker's fork server pays once and its forked trials do not: trial_start.py) and the
     data load, against the training seconds the trials themselves report;
  2. a study of --trials trials with --parallel=1 (the baseline);
  3. the same trials (a fresh study) with --parallel=2.
The ratio column is trials/hour against --parallel=1. On a machine with few cores, two
TensorFlow processes compete for them, so expect far less than 2x.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def timed(command: list[str], env=None) -> float:  # wall seconds of a command
    start = time.perf_counter()
    subprocess.run(command, cwd=PROJECT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def study(output: Path, name: str, trials: int, parallel: int, env: dict) -> tuple[float, list[dict]]:
    from netfab.study_storage import open_storage
    from netfab.tune.records import trial_records
    from netfab.tune.study import load_optuna_study, read_spec

    fab = str(Path(sys.executable).with_name("fab"))
    seconds = timed([fab, "tune", f"--trials={trials}", f"--parallel={parallel}", f"--study={name}",
                     f"--output={output}", "--pruner=none"], env)  # every trial to its end
    spec = read_spec(str(output / name))
    records = trial_records(load_optuna_study(spec, open_storage(spec.storage_url)).get_trials())
    return seconds, [r for r in records.values() if r["status"] == "ok"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NET_")},
           "NET_EPOCHS": str(args.epochs), "PYTHONPATH": str(PROJECT)}

    # One process, timed from outside (start to exit) and inside (imports, then data load).
    probe = ("import time; t0 = time.perf_counter(); import netfab.train.loop; t1 = time.perf_counter(); "
             "from netfab.config import load_config; from data.loading import load_rows; "
             "from data.preparation import prepare; from netfab.storage import dataset_files; "
             "c = load_config().config; prepare(load_rows(dataset_files('data/fixtures/sanity_2k.json'), c), c); "
             "print(t1 - t0, time.perf_counter() - t1)")
    start = time.perf_counter()
    inside = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, env=env, check=True,
                            capture_output=True, text=True).stdout.split()
    imports, load = float(inside[0]), float(inside[1])
    process = time.perf_counter() - start - imports - load
    with tempfile.TemporaryDirectory(prefix="netfab-bench-") as tmp:
        rows = []
        for parallel in (1, 2):
            seconds, records = study(Path(tmp), f"p{parallel}", args.trials, parallel, env)
            trial = sum(r["seconds"] for r in records) / len(records)
            train = sum(r["train_seconds"] for r in records) / len(records)
            rows.append((parallel, seconds, args.trials * 3600 / seconds, trial, train))

    print(f"on {os.cpu_count()} cores, {args.trials} trials of {args.epochs} epoch(s) on the 2K fixture")
    print(f"a fresh process: start {process:.1f} s, imports (TensorFlow, Keras) {imports:.1f} s "
          f"(once per worker: trials fork from its fork server); per trial: data load + prepare {load:.1f} s")
    print(f"{'workers':>7} {'study s':>8} {'trials/h':>9} {'ratio':>6} {'trial s':>8} "
          f"{'train s':>8} {'overhead s':>10}")
    base = rows[0][2]
    for parallel, seconds, per_hour, trial, train in rows:
        print(f"{parallel:>7} {seconds:>8.0f} {per_hour:>9.0f} {per_hour / base:>5.2f}x "
              f"{trial:>8.1f} {train:>8.1f} {trial - train:>10.1f}")
    print("trial s: wall time of one trial (the forked `fab train` process); train s: what "
          "`fab train` reports for itself (data load, fit, export, zip); overhead s = the rest")


if __name__ == "__main__":
    main()
