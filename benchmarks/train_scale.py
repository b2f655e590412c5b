"""Training at the seed's scale: `fab train` against plain Keras on the same arrays, per dataset size.

Usage: python benchmarks/train_scale.py [--rows 1000000,5000000] [--batch-size N] [--rounds 1]

For each size, the fixture generator's rows (written once to --data-dir), then, alternating which
goes first from round to round:
  fab train    NET_EPOCHS=1 `fab train --dataset=<rows>` in its own process, as a user runs it:
               load seconds and the epoch's rows/s from its log, its peak RSS (wait4)
  plain Keras  its own process: the same rows loaded and encoded by netfab (not timed), then the
               same numeric core (models.build) fitted for one epoch on those numpy arrays with
               the same batch size, steps_per_execution and validation data, and no callback but
               a timer: the limit netfab's training loop can reach
Both epochs are timed the same way, from Keras's on_epoch_begin to on_epoch_end (the validation
pass included, the first step's tracing too).
The table shows both, and fab train's rows/s as a share of the limit's (floor 0.85), its peak
RSS (floor 2.0 GB at 5M rows) and its load time (floor 60 s at 5M rows).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

LIMIT_SCRIPT = r"""
import json, sys, time
from pathlib import Path
import keras
import models
from data.loading import load_rows
from data.preparation import prepare
from netfab.config import load_config

config = load_config(sys.argv[2]).config
prepared = prepare(load_rows([Path(sys.argv[1])], config), config)
keras.utils.set_random_seed(config.seed)
core = models.build(config, prepared.shapes)
core.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="binary_crossentropy",
             metrics=[keras.metrics.AUC(name="auc")], steps_per_execution=config.steps_per_execution)
train, validation = prepared.train, prepared.validation


class EpochTimer(keras.callbacks.Callback):  # timed as fab train's progress lines time an epoch
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.monotonic() - self.started


timer = EpochTimer()
core.fit(train.features, train.label, batch_size=config.batch_size, epochs=1, shuffle=True, verbose=0,
         validation_data=(validation.features, validation.label), validation_batch_size=4096,
         callbacks=[timer])
print(json.dumps({"rows_per_s": len(train) / timer.seconds, "epoch_s": timer.seconds}))
"""


def run(command: list[str], env: dict) -> tuple[str, float]:
    """Output and peak RSS (GB) of one child process."""
    with tempfile.TemporaryFile("w+") as out:
        child = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        out.seek(0)
        text = out.read()
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{' '.join(command)} failed:\n{text[-3000:]}")
    return text, usage.ru_maxrss / 1e6  # ru_maxrss is in KB on Linux


def fab_train(rows_file: Path, variant: str, env: dict, output: Path) -> dict:
    text, rss = run([str(Path(sys.executable).with_name("fab")), "train", f"--variant={variant}",
                     f"--dataset={rows_file}", f"--output={output}"], env)
    loaded = re.search(r"loaded [\d,]+ rows from \d+ file\(s\) in ([\d.]+) s", text)
    epoch = re.search(r"epoch 1/1 done in \d+ s \(([\d,]+) rows/s\)", text)
    auc = re.search(r"test AUC ([\d.]+) .*\(validation AUC ([\d.]+)\)", text)
    return {"load_s": float(loaded.group(1)), "rows_per_s": float(epoch.group(1).replace(",", "")),
            "rss_gb": rss, "test_auc": float(auc.group(1)), "validation_auc": float(auc.group(2))}


def plain_keras(rows_file: Path, variant: str, env: dict) -> dict:
    text, rss = run([sys.executable, "-c", LIMIT_SCRIPT, str(rows_file), variant], env)
    return {**json.loads(text.strip().splitlines()[-1]), "rss_gb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,5000000", help="comma-separated dataset sizes")
    parser.add_argument("--batch-size", type=int, default=None, help="default: netconfig.py's")
    parser.add_argument("--steps-per-execution", type=int, default=None, help="default: netconfig.py's")
    parser.add_argument("--rounds", type=int, default=1, help="measurements of each, alternating")
    parser.add_argument("--variant", default="deep_v1")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "netfab-bench"),
                        help="where generated datasets are kept between runs")
    args = parser.parse_args()
    from data.fixture import write_fixture

    env = {k: v for k, v in os.environ.items() if not k.startswith("NET_")}
    env.update(NET_EPOCHS="1", PYTHONPATH=str(PROJECT))
    if args.batch_size:
        env["NET_BATCH_SIZE"] = str(args.batch_size)
    if args.steps_per_execution:
        env["NET_STEPS_PER_EXECUTION"] = str(args.steps_per_execution)
    table = []
    for size in (int(s) for s in args.rows.split(",")):
        rows_file = Path(args.data_dir) / f"rows_{size}.json"
        if not rows_file.exists():
            print(f"writing {rows_file} ...", flush=True)
            write_fixture(rows_file, size)
        mb = rows_file.stat().st_size / 1e6
        for round_ in range(args.rounds):
            order = ["fab train", "plain Keras"] if round_ % 2 == 0 else ["plain Keras", "fab train"]
            result = {}
            for name in order:
                started = time.monotonic()
                with tempfile.TemporaryDirectory(prefix="netfab-bench-out-") as output:
                    result[name] = (fab_train(rows_file, args.variant, env, Path(output))
                                    if name == "fab train" else plain_keras(rows_file, args.variant, env))
                print(f"{size:,} rows, round {round_ + 1}: {name} {result[name]} "
                      f"({time.monotonic() - started:.0f} s)", flush=True)
            table.append((size, mb, result["fab train"], result["plain Keras"]))

    print(f"\n{args.variant}, batch size {env.get('NET_BATCH_SIZE', 'default')}, steps per execution "
          f"{env.get('NET_STEPS_PER_EXECUTION', 'default')}, one epoch, {os.cpu_count()} cores")
    print(f"{'rows':>10} {'file MB':>8} {'load s':>7} {'fab train rows/s':>17} {'plain Keras rows/s':>19} "
          f"{'ratio':>6} {'peak RSS GB':>12} {'RSS/file':>9} {'val AUC':>8} {'test AUC':>9}")
    for size, mb, ours, limit in table:
        print(f"{size:>10,} {mb:>8.0f} {ours['load_s']:>7.1f} {ours['rows_per_s']:>17,.0f} "
              f"{limit['rows_per_s']:>19,.0f} {ours['rows_per_s'] / limit['rows_per_s']:>6.2f} "
              f"{ours['rss_gb']:>12.2f} {ours['rss_gb'] * 1e3 / mb:>8.2f}x {ours['validation_auc']:>8.4f} "
              f"{ours['test_auc']:>9.4f}")
    print("floors: ratio >= 0.85; at 5M rows peak RSS <= 2.0 GB and load <= 60 s")


if __name__ == "__main__":
    main()
