"""How fast write_fixture turns a seed into JSON lines, against a naive json.dumps-per-row writer.

Usage: python benchmarks/fixture_speed.py [--rows 1000000] [--seed 7]

Both writers are timed from seed to file (generation included). The naive one runs on a
100K-row slice and its rate stands for the whole run; it is measured here, on this machine,
so the ratio holds across machines. Exits non-zero if the plain writer is below FLOOR_ROWS_PER_S.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from data.fixture import DEFAULT_SEED, generate_chunks, write_fixture

FLOOR_ROWS_PER_S = 100_000   # the plain writer must stay above this
NAIVE_ROWS = 100_000


def write_naive(path: Path, rows: int, seed: int) -> None:
    """One json.dumps per row dict: the obvious loop that write_fixture replaces."""
    with open(path, "w") as out:
        for chunk in generate_chunks(rows, seed):
            # NaN is not JSON: a null rating must become None, as to_json does for us.
            for record in chunk.astype(object).where(chunk.notna(), None).to_dict("records"):
                out.write(json.dumps(record) + "\n")


def timed(write, path: Path) -> tuple[float, float]:
    """Seconds taken by write(path), and the MB it wrote."""
    start = time.perf_counter()
    write(path)
    return time.perf_counter() - start, path.stat().st_size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per fixture writer run")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    if args.rows < 1:
        parser.error(f"--rows must be at least 1, got {args.rows}")
    naive_rows = min(NAIVE_ROWS, args.rows)
    with tempfile.TemporaryDirectory() as folder:
        runs = [("naive json.dumps per row", naive_rows,
                 *timed(lambda p: write_naive(p, naive_rows, args.seed), Path(folder, "naive.json")))]
        for name in ("rows.json", "rows.json.gz"):
            seconds, mb = timed(lambda p: write_fixture(p, args.rows, args.seed), Path(folder, name))
            runs.append((f"write_fixture {name}", args.rows, seconds, mb))
    naive_rate = runs[0][1] / runs[0][2]
    print(f"{'writer':<28}{'rows':>11}{'seconds':>9}{'rows/s':>10}{'MB':>8}{'vs naive':>10}")
    for name, rows, seconds, mb in runs:
        rate = rows / seconds
        print(f"{name:<28}{rows:>11,}{seconds:>9.2f}{rate:>10,.0f}{mb:>8.1f}{rate / naive_rate:>9.1f}x")
    plain_rate = runs[1][1] / runs[1][2]
    if plain_rate < FLOOR_ROWS_PER_S:
        sys.exit(f"the plain writer ran at {plain_rate:,.0f} rows/s, below the floor of "
                 f"{FLOOR_ROWS_PER_S:,}: profile data/fixture.py (_chunk and to_json) before merging")


if __name__ == "__main__":
    main()
