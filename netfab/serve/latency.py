"""Model zips' latency, measured the way fab serve calls a model: one row alone, and 1,000-row batches.

    python -m netfab.serve.latency a/model.zip b/model.zip --rows data/fixtures/sanity_2k.json

prints {"zips": [{"uri", "single_row_ms", "batch_ms", "batch_rows", "calls"}, ...]}: the median
(p50) of every call. Each zip is loaded and warmed up as `fab serve` does (ServingModel), then
called through the same caller: a lone row in the calling thread (single_threaded, as fab serve
scores a request with nothing to batch it with), a batch on TensorFlow's thread pools (as the
batcher calls it). The zips take turns, a round of calls each, so that a machine shared with
other work slows them alike. `fab optimize` runs this in a fresh process for the zips it compares.
"""
import argparse
import json
import sys
import time

import numpy as np

SINGLE_ROW_CALLS = 100  # per zip and round
BATCH_CALLS = 10  # per zip and round
BATCH_ROWS = 1000
ROUNDS = 20  # short turns: a burst of other work on the machine falls on every zip alike


def measure_latency(zip_uris: list[str], rows: list[dict], rounds: int = ROUNDS,
                    single_row_calls: int = SINGLE_ROW_CALLS, batch_calls: int = BATCH_CALLS,
                    batch_rows: int = BATCH_ROWS) -> list[dict]:
    """p50 milliseconds of a one-row call and of a `batch_rows`-row call, for each zip."""
    from netfab.serve.model import ServingModel

    batch = (rows * (batch_rows // len(rows) + 1))[:batch_rows]  # a short file's rows repeated
    timed = []
    for uri in zip_uris:
        model = ServingModel.load(uri)
        model.warm_up()
        one, many = model.inputs.columns_from_rows(batch[:1]), model.inputs.columns_from_rows(batch)
        model.predict(many)  # a model compiled per batch size (fab optimize's xla) compiles this one now
        timed.append((uri, model, one, many, [], []))
    for _ in range(rounds):
        for uri, model, one, many, single, batched in timed:
            single += _durations(lambda: model.predict(one, single_threaded=True), single_row_calls)
            batched += _durations(lambda: model.predict(many), batch_calls)
    return [{"uri": uri, "single_row_ms": 1e3 * float(np.median(single)),
             "batch_ms": 1e3 * float(np.median(batched)), "batch_rows": batch_rows,
             "calls": {"single_row": len(single), "batch": len(batched)}}
            for uri, model, one, many, single, batched in timed]


def _durations(call, count: int) -> list[float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("zips", nargs="+")
    parser.add_argument("--rows", required=True, help="newline-delimited JSON rows to call the models on")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--single-row-calls", type=int, default=SINGLE_ROW_CALLS)
    parser.add_argument("--batch-calls", type=int, default=BATCH_CALLS)
    args = parser.parse_args(argv)
    from data.loading import first_rows

    rows = first_rows(args.rows, BATCH_ROWS)
    json.dump({"zips": measure_latency(args.zips, rows, args.rounds, args.single_row_calls, args.batch_calls)},
              sys.stdout)


if __name__ == "__main__":
    main()
