"""netfab tasks. `fab -l` lists them; `fab --help train` explains one.

    fab train                                   # deep_v1 on the bundled 2K fixture -> ./artifacts
    NET_LEARNING_RATE=0.01 fab train --variant=rnn_v1 --dataset=out/part-*.json.gz
    fab config --variant=rnn_v1                 # effective config and the source of each value
    fab ci                                      # the Jenkins sanity run

Each task parses its options and calls one function in netfab/; a user's mistake ends in a
one-line `error: ...` and exit code 1, never a traceback. Heavy imports (TensorFlow) happen
inside the tasks so that `fab -l` stays instant.
"""
import logging

from fabric import task

import netconfig
from netfab.errors import exit_on_user_error

FIXTURE = "the bundled 2K-row fixture (data/fixtures/sanity_2k.json)"


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")


def _fixture_path() -> str:
    from data.fixture import FIXTURE_PATH

    return str(FIXTURE_PATH)


@task(help={"variant": f"variant in variant_config.json (default {netconfig.DEFAULT_VARIANT})",
            "dataset": f"dataset URI: a file, folder or glob of NDJSON shards (default: {FIXTURE})",
            "output": "where model zips go: <output>/<variant>/<run_id>/model.zip (default ./artifacts)"})
def train(c, variant=netconfig.DEFAULT_VARIANT, dataset=None, output="artifacts"):
    """Train a variant on a dataset and write its model zip."""
    _setup_logging()
    with exit_on_user_error():
        from netfab.config import load_config
        from netfab.training import train as run_training

        result = run_training(load_config(variant), dataset or _fixture_path(), output)
    m = result.metrics
    print(f"model zip: {result.zip_uri}")
    print(f"test AUC {m['test_auc']:.4f}  test loss {m['test_loss']:.4f}  "
          f"best epoch {m['best_epoch']} of {m['epochs_run']}  ({m['seconds']:.0f} s)")


@task(help={"output": "where the sanity zips go (default ./artifacts/ci)",
            "dataset": f"dataset URI (default: {FIXTURE})",
            "min_auc": "test AUC every variant must reach (default 0.65)"})
def ci(c, output="artifacts/ci", dataset=None, min_auc=0.65):
    """Jenkins sanity: train every variant on the fixture and verify each model zip."""
    _setup_logging()
    with exit_on_user_error():
        from netfab.ci import format_report, run_ci

        checks = run_ci(output, dataset or _fixture_path(), min_auc=float(min_auc))
    print(format_report(checks))
    print(f"ci passed: {len(checks)} variant(s)")


@task(help={"variant": f"variant in variant_config.json (default {netconfig.DEFAULT_VARIANT})"})
def config(c, variant=netconfig.DEFAULT_VARIANT):
    """Print the effective config of a variant and where each value came from."""
    with exit_on_user_error():
        from netfab.config import load_config

        print(load_config(variant).describe())


@task
def variants(c):
    """List the variants, the keys each one changes, and the registered architectures."""
    with exit_on_user_error():
        import models
        from netfab.config import read_variants

        for name, deltas in read_variants().items():
            changes = ", ".join(f"{k}={v}" for k, v in deltas.items()) or "(defaults)"
            print(f"{name:<12} {changes}")
        print("\narchitectures:")
        for name, entry in models.REGISTRY.items():
            print(f"  {name:<10} {entry.summary}")


@task(help={"rows": "how many rows (default 2000)", "seed": "generator seed (default 7)",
            "out": "output file, .json or .json.gz (default data/fixtures/sanity_2k.json)"})
def fixture(c, rows=2000, seed=7, out=None):
    """Write a deterministic booking dataset (newline-delimited JSON)."""
    with exit_on_user_error():
        from data.fixture import write_fixture

        summary = write_fixture(out or _fixture_path(), int(rows), int(seed), progress=True)
    print(f"{summary.rows} rows -> {summary.path} (label rate {summary.label_rate:.3f}, "
          f"{summary.seconds:.1f} s)")


@task(help={"model": "model zip URI"})
def inspect(c, model):
    """Verify a model zip's manifest and print its summary."""
    with exit_on_user_error():
        from netfab.packaging import describe_package

        print(describe_package(model))


@task(iterable=["param"],
      help={"variant": f"variant whose config names the query and the engine settings (default {netconfig.DEFAULT_VARIANT})",
            "out": "dataset URI for the shards: a folder or gs://bucket/prefix (default artifacts/datasets/<query>)",
            "engine": "bigquery | duckdb (default: bigquery when a GCP project is configured, else duckdb)",
            "start": "start_date parameter, YYYY-MM-DD", "end": "end_date parameter, YYYY-MM-DD",
            "param": "NAME=VALUE for any parameter the query declares; repeat for several",
            "dry_run": "check the query and report the bytes it would scan, write nothing",
            "overwrite": "replace a dataset already at --out"})
def dataset(c, variant=netconfig.DEFAULT_VARIANT, out=None, engine=None, start=None, end=None,
            param=None, dry_run=False, overwrite=False):
    """Run the config's query (data/queries/<query>.sql) and write its rows as NDJSON shards."""
    _setup_logging()
    with exit_on_user_error():
        from netfab.config import load_config
        from netfab.dataset import make_dataset, parse_params

        effective = load_config(variant)
        params = parse_params(param or [], start=start, end=end)
        out = out or f"artifacts/datasets/{effective.config.query}"
        result = make_dataset(effective, out, params, engine=engine, dry_run=dry_run, overwrite=overwrite)
    scanned = "" if result.bytes_processed is None else f", {_size(result.bytes_processed)} scanned"
    if result.dry_run:
        print(f"dry run: query {result.query} on {result.engine} is valid{scanned}; nothing written")
        return
    jobs = f", jobs {' '.join(result.job_ids)}" if result.job_ids else ""
    print(f"dataset: {result.uri}  ({result.rows:,} rows in {len(result.shards)} shard(s), "
          f"{result.engine}{scanned}{jobs}, {result.seconds:.0f} s)")
    print(f"train on it: fab train --variant={variant} --dataset={result.uri}")


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


@task(help={"rows": "impressions (default 20000)", "seed": "generator seed (default 7)",
            "out": "warehouse folder (default: the config's warehouse, data/warehouse)"})
def warehouse(c, rows=20000, seed=7, out=None):
    """Write the sample warehouse (users, listings, impressions, bookings) for the duckdb engine."""
    with exit_on_user_error():
        from data.warehouse import write_warehouse
        from netfab.config import load_config

        summary = write_warehouse(out or load_config().config.warehouse, int(rows), int(seed))
    tables = ", ".join(f"travel.{name} {count:,}" for name, count in summary.rows.items())
    print(f"warehouse {summary.path}: {tables} rows ({summary.seconds:.1f} s)")
