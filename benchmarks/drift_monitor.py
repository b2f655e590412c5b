"""What drift tracking adds to a scored batch: DriftMonitor.observe against the model's own call.

Usage: python benchmarks/drift_monitor.py [--model ZIP] [--rounds 200]
       (without --model, a deep_v1 zip is trained on the bundled fixture first, ~15 s)

For batches of 1, 64 and 1,000 rows (fixture-generator rows, seed 11), in one process, alternating:
  model    the zip's model called on the batch's checked columns, as fab serve's batcher calls it
  observe  DriftMonitor.observe(columns, scores) on the same batch (the columns as the server holds them)
The table shows p50 of each in microseconds and observe as a share of the model call: the cost of
drift tracking per batch, against the baseline measured in the same run.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BATCHES = (1, 64, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model zip (default: train deep_v1 on the fixture for 3 epochs)")
    parser.add_argument("--rounds", type=int, default=200, help="timed calls of each per batch size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_uri = args.model or _train(tmp)
        print(table(model_uri, args.rounds))


def _train(tmp: str) -> str:
    from data.fixture import FIXTURE_PATH
    from netfab.config import load_config
    from netfab.train.loop import train

    return train(load_config("deep_v1", environ={"NET_EPOCHS": "3"}), str(FIXTURE_PATH), tmp).zip_uri


def table(model_uri: str, rounds: int) -> str:
    import pandas as pd

    from data.fixture import generate_chunks
    from netfab.drift.monitor import DriftMonitor
    from netfab.drift.profile import ReferenceProfile
    from netfab.model_zip import ModelZip
    from netfab.serve.model import ServingModel

    model = ServingModel.load(model_uri)
    with ModelZip(model_uri) as package:
        monitor = DriftMonitor(ReferenceProfile.from_zip(package))
    frame = pd.concat(generate_chunks(max(BATCHES) * 4, seed=11))
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    lines = [f"{'batch rows':>10} {'model p50 us':>13} {'observe p50 us':>15} {'observe / model':>16}"]
    for size in BATCHES:
        batches = [rows[start:start + size] for start in range(0, len(rows) - size + 1, size)][:4]
        columns = [model.inputs.columns_from_rows(batch) for batch in batches]
        model_us, observe_us = [], []
        for index in range(rounds):
            batch = columns[index % len(columns)]
            started = time.perf_counter()
            scores = model.predict(batch, single_threaded=size == 1)
            middle = time.perf_counter()
            monitor.observe(batch, scores)
            model_us.append((middle - started) * 1e6)
            observe_us.append((time.perf_counter() - middle) * 1e6)
        model_p50, observe_p50 = statistics.median(model_us), statistics.median(observe_us)
        lines.append(f"{size:>10,} {model_p50:>13,.0f} {observe_p50:>15,.0f} {observe_p50 / model_p50:>15.0%}")
    lines.append(f"{rounds} calls each, alternating, one process; {len(monitor.names)} histograms "
                 f"({len(monitor.names) - 1} features and the score)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
