"""Which TensorFlow executor a batcher call should use, by batch size: the default one (ops handed to
the inter-op threads) against the single-threaded one (every op in the calling thread).

Usage: python benchmarks/batch_threads.py [--model ZIP] [--rows 16,64,256,1024,2048,4096] [--repeats 3]

For each batch size, the same rows of the bundled fixture (repeated past 2,000) are scored many times
with each executor, alternating which goes first; it prints the best wall and process CPU
milliseconds per call of each, and the single-threaded one's share of the default's. The batcher
(netfab/serve/batcher.py, SINGLE_THREADED_ROWS) runs calls up to the size where single-threaded
stops saving CPU without costing wall time. With no --model, deep_v1 is trained on the fixture first.
"""
import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "benchmarks"))

import serve as bench  # noqa: E402  (after the path): the serving benchmark's fixture rows and model


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(model, columns, single_threaded: bool, calls: int) -> tuple[float, float]:
    model.predict(columns, single_threaded=single_threaded)
    started, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(calls):
        model.predict(columns, single_threaded=single_threaded)
    return (time.perf_counter() - started) / calls * 1e3, (cpu_seconds() - cpu) / calls * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model zip (default: deep_v1 trained on the fixture)")
    parser.add_argument("--rows", default="16,64,256,1024,2048,4096")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model_uri = args.model or bench._train_fixture_model(Path(tempfile.mkdtemp(prefix="batch-threads-")))
    from netfab.serve.model import ServingModel

    model = ServingModel.load(model_uri)
    fixture = bench.first_rows(bench.FIXTURE_PATH, 2000)
    print(f"\n{'rows':>6}{'default wall ms':>17}{'cpu ms':>9}{'single wall ms':>16}{'cpu ms':>9}"
          f"{'single/default wall':>21}{'cpu':>7}")
    for size in map(int, args.rows.split(",")):
        columns = model.inputs.columns_from_rows((fixture * (size // len(fixture) + 1))[:size])
        calls = max(20, 20_000 // size)
        best = {False: [float("inf")] * 2, True: [float("inf")] * 2}
        for repeat in range(args.repeats):
            for single_threaded in ((False, True) if repeat % 2 == 0 else (True, False)):
                wall, cpu = timed(model, columns, single_threaded, calls)
                best[single_threaded] = [min(best[single_threaded][0], wall), min(best[single_threaded][1], cpu)]
        (dw, dc), (sw, sc) = best[False], best[True]
        print(f"{size:>6}{dw:>17.3f}{dc:>9.3f}{sw:>16.3f}{sc:>9.3f}{sw / dw:>21.0%}{sc / dc:>7.0%}")


if __name__ == "__main__":
    main()
