"""What a tuning worker saves per trial by forking `fab train` from its fork server instead of
starting a fresh interpreter (netfab/tune/trial_process.py).

Usage: python benchmarks/trial_start.py [--rows 2000] [--epochs 2] [--repeats 3]

The same trial, `NET_EPOCHS=--epochs fab train --variant=deep_v1` on the bundled 2K fixture (or
--rows N generated rows), run --repeats times each way, alternating which goes first (the
machine's load drifts):
  baseline  a fresh `fab train` process (what the leaderboard's reproduce command runs, and what
            a worker ran before)
  candidate a child forked from the worker's fork server (what a worker runs now)
It prints the wall seconds of every run, the medians and their ratio, and once the seconds the
fork server took to start (Python and TensorFlow's import, paid once per worker).
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

from netfab.tune.trial_process import TrialLauncher  # noqa: E402  (after the path)


def fresh(args: list[str], env: dict, log: Path) -> float:
    started = time.perf_counter()
    with open(log, "w") as stream:
        subprocess.run([str(Path(sys.executable).with_name("fab")), *args], cwd=PROJECT, env=env,
                       stdout=stream, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - started


def forked(launcher: TrialLauncher, args: list[str], env: dict, log: Path) -> float:
    started = time.perf_counter()
    child = launcher.start(args, env, PROJECT, log)
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"forked fab train failed ({child.exitcode}); see {log}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="2000: the bundled fixture; more: generated")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NET_")},
           "NET_EPOCHS": str(args.epochs), "PYTHONPATH": str(PROJECT)}
    with tempfile.TemporaryDirectory(prefix="netfab-bench-") as tmp:
        output = Path(tmp)
        from data.fixture import FIXTURE_PATH, FIXTURE_ROWS, write_fixture

        dataset = str(FIXTURE_PATH if args.rows == FIXTURE_ROWS else
                      write_fixture(output / f"fixture_{args.rows}.json", args.rows).path)
        launcher = TrialLauncher()
        server = forked(launcher, ["--version"], env, output / "server.log")  # starts the fork server
        print(f"fork server started in {server:.1f} s (once per worker)", flush=True)
        seconds = {"fresh process": [], "forked": []}
        for repeat in range(args.repeats):
            order = list(seconds) if repeat % 2 == 0 else list(reversed(seconds))
            for way in order:
                train = ["train", "--variant=deep_v1", f"--dataset={dataset}", f"--output={output}/{way[:5]}{repeat}"]
                log = output / f"{way[:5]}{repeat}.log"
                took = fresh(train, env, log) if way == "fresh process" else forked(launcher, train, env, log)
                seconds[way].append(took)
                print(f"  repeat {repeat} {way:<14} {took:6.2f} s", flush=True)

    print(f"\nfab train deep_v1, {args.epochs} epochs, {args.rows:,} rows, {args.repeats} repeats, "
          f"{os.cpu_count()} cores (shared)")
    print(f"{'trial process':<16} {'median s':>9} {'ratio':>6}")
    base = statistics.median(seconds["fresh process"])
    for way, runs in seconds.items():
        print(f"{way:<16} {statistics.median(runs):>9.2f} {statistics.median(runs) / base:>5.2f}x")


if __name__ == "__main__":
    main()
