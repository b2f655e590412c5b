"""How fast the duckdb engine turns a warehouse into training shards: `fab dataset` on 1M impressions.

Usage: python benchmarks/dataset_speed.py [--rows 1000000] [--keep DIR]

Writes the sample warehouse (users, listings, impressions, bookings) for --rows impressions,
then times the duckdb engine running data/queries/training_rows.sql over it (parse, transpile,
four-table join, JSON shards), plain and gzip. The reference is the fixture generator writing
the same rows straight from numpy (write_fixture, no join), timed here on the same machine.
"""
import argparse
import shutil
import tempfile
import time
from pathlib import Path

from data.fixture import write_fixture
from data.warehouse import write_warehouse
from netfab.dataset import duckdb_engine
from netfab.dataset.make import load_query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="impressions in the warehouse")
    parser.add_argument("--keep", type=Path, help="keep the warehouse and shards in this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="netfab-bench-"))
    try:
        started = time.perf_counter()
        made = write_warehouse(folder / "warehouse", args.rows)
        print(f"warehouse: {made.rows} rows in {time.perf_counter() - started:.1f} s")
        template = load_query("training_rows")
        runs = []
        for compressed in (False, True):
            out = folder / ("shards.gz" if compressed else "shards")
            started = time.perf_counter()
            result = duckdb_engine.run(template, template.bind({}), str(out), warehouse=str(folder / "warehouse"),
                                       compressed=compressed)
            seconds = time.perf_counter() - started
            mb = sum(Path(s).stat().st_size for s in result.shards) / 1e6
            runs.append((f"duckdb engine{' gzip' if compressed else ''}", result.rows, seconds, mb))
        started = time.perf_counter()
        fixture = write_fixture(folder / "fixture.json", args.rows)
        runs.append(("write_fixture (no join)", fixture.rows, time.perf_counter() - started,
                     (folder / "fixture.json").stat().st_size / 1e6))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    reference = runs[-1][1] / runs[-1][2]
    print(f"{'what':<26}{'rows':>11}{'seconds':>9}{'rows/s':>11}{'MB':>8}{'vs fixture':>12}")
    for name, rows, seconds, mb in runs:
        rate = rows / seconds
        print(f"{name:<26}{rows:>11,}{seconds:>9.2f}{rate:>11,.0f}{mb:>8.1f}{rate / reference:>11.2f}x")


if __name__ == "__main__":
    main()
