"""The embedded engine: a BigQuery-dialect query, transpiled by sqlglot, run by DuckDB over local tables.

    from netfab.dataset import duckdb_engine
    sql = duckdb_engine.transpile(template.sql, {"start_date": date(2026, 1, 1), ...})
    result = duckdb_engine.run(template, values, "artifacts/datasets/q1", warehouse="data/warehouse")

The warehouse is a folder with one entry per table, named as the query names it (the GCP
project part of `project.dataset.table` is dropped): `travel.impressions.parquet`,
`travel.users.ndjson` (or .json, .jsonl, optionally .gz), or a folder `travel.bookings/` of
Parquet or NDJSON files. Parameters are bound as typed SQL literals by rewriting the parsed
query, so the SQL DuckDB runs is complete in itself (and COPY, which takes no prepared
parameters, can stream it to JSON files in C++).
"""
import datetime
import logging
import tempfile
from pathlib import Path

from netfab import storage
from netfab.dataset.query import EngineResult, shard_name
from netfab.errors import QueryError

log = logging.getLogger(__name__)
TABLE_SUFFIXES = {".parquet": "parquet", ".ndjson": "json", ".json": "json", ".jsonl": "json",
                  ".ndjson.gz": "json", ".json.gz": "json", ".jsonl.gz": "json"}
SHARD_BYTES = "128MB"  # DuckDB starts a new shard past this size
SAMPLE_ROWS = 20_000  # impressions in the sample warehouse made when the default one is missing


def transpile(sql: str, values: dict[str, object]) -> str:
    """DuckDB SQL for a BigQuery-dialect query, its @parameters replaced by typed literals."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="bigquery")
    except sqlglot.errors.ParseError as error:
        raise QueryError(f"the query is not valid BigQuery SQL: {_first_line(error)}") from None

    def bind(node):
        if isinstance(node, exp.Parameter):
            name = node.name
            if name not in values:
                raise QueryError(f"the query uses @{name}, which its `-- @param` lines do not declare")
            return _literal(values[name])
        if isinstance(node, exp.Table) and node.args.get("catalog"):
            node = node.copy()
            node.set("catalog", None)  # project.dataset.table -> dataset.table
        return node

    return tree.transform(bind).sql("duckdb")


def _literal(value):
    from sqlglot import exp

    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    if isinstance(value, datetime.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, datetime.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    return exp.Literal.string(str(value))


def tables_read(sql: str) -> list[str]:
    """`dataset.table` of every table the query reads (not its CTEs), sorted."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="bigquery")
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return sorted({f"{t.db}.{t.name}" if t.db else t.name for t in tree.find_all(exp.Table)
                   if not (not t.db and t.name in ctes)})


def warehouse_tables(warehouse: Path) -> dict[str, tuple[str, list[Path]]]:
    """`dataset.table` -> (format, files) for every table in a warehouse folder."""
    tables = {}
    for entry in sorted(Path(warehouse).iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir():
            files = sorted(p for p in entry.iterdir() if _format(p.name) and not p.name.startswith((".", "_")))
            if files:
                tables[entry.name] = (_format(files[0].name), files)
        elif _format(entry.name):
            suffix = next(s for s in sorted(TABLE_SUFFIXES, key=len, reverse=True) if entry.name.endswith(s))
            tables[entry.name[:-len(suffix)]] = (TABLE_SUFFIXES[suffix], [entry])
    return tables


def _format(name: str) -> str | None:
    return next((f for s, f in TABLE_SUFFIXES.items() if name.endswith(s)), None)


def connect(warehouse: Path, needed: list[str]):
    """A DuckDB connection where each needed `dataset.table` is a view over its files."""
    import duckdb

    available = warehouse_tables(warehouse)
    missing = [t for t in needed if t not in available]
    if missing:
        raise QueryError(f"the query reads {', '.join(missing)}, not in warehouse {warehouse} "
                         f"(tables there: {', '.join(available) or 'none'}); a table is a file "
                         f"<dataset>.<table>.parquet|.ndjson or a folder <dataset>.<table>/")
    con = duckdb.connect()
    for name in needed:
        kind, files = available[name]
        schema, _, table = name.rpartition(".")
        paths = "[" + ", ".join(_quote(str(p)) for p in files) + "]"
        reader = f"read_parquet({paths})" if kind == "parquet" else \
            f"read_json_auto({paths}, format='newline_delimited')"
        if schema:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        qualified = f'"{schema}"."{table}"' if schema else f'"{table}"'
        con.execute(f"CREATE VIEW {qualified} AS SELECT * FROM {reader}")
    return con, sum(p.stat().st_size for t in needed for p in available[t][1])


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(error) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def ensure_sample_warehouse(warehouse: str) -> None:
    """Make the sample warehouse at the default location the first time it is needed."""
    from netconfig import NetConfig

    if Path(warehouse).exists() or warehouse != NetConfig().warehouse:
        return
    from data.warehouse import write_warehouse

    log.info("no warehouse at %s: writing the sample one (%d impressions; `fab warehouse` "
             "makes another size)", warehouse, SAMPLE_ROWS)
    write_warehouse(warehouse, SAMPLE_ROWS)


def run(template, values: dict, out_uri: str, warehouse: str, compressed: bool = False,
        dry_run: bool = False, shard_bytes: str = SHARD_BYTES) -> EngineResult:
    """Run the query over `warehouse` and publish its rows as shards at `out_uri`."""
    import duckdb

    ensure_sample_warehouse(warehouse)
    if not Path(warehouse).is_dir():
        raise QueryError(f"warehouse {warehouse} does not exist; point NET_WAREHOUSE at a folder of "
                         f"tables, or make the sample one: fab warehouse --out={warehouse}")
    sql = transpile(template.sql, values)
    con, table_bytes = connect(Path(warehouse), tables_read(template.sql))
    details = {"warehouse": str(warehouse), "duckdb_sql": sql}
    try:
        if dry_run:
            con.execute(f"EXPLAIN {sql}")  # binds every name and type without running
            log.info("dry run: query %s reads %.1f MB of warehouse tables", template.name, table_bytes / 1e6)
            return EngineResult([], 0, [], table_bytes, details)
        # Beside a local output, so that publishing a shard is a rename, not a copy.
        local_out = None if storage.is_gcs(out_uri) else storage.local_path(out_uri)
        if local_out:
            local_out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".netfab-duckdb-", dir=local_out) as tmp:
            options = (f"FORMAT JSON, FILENAME_PATTERN 'part-{{i}}', FILE_SIZE_BYTES '{shard_bytes}'"
                       + (", COMPRESSION gzip" if compressed else ""))
            rows = con.execute(f"COPY ({sql}) TO {_quote(tmp + '/out')} ({options})").fetchone()[0]
            written = sorted(Path(tmp, "out").glob("part-*"), key=lambda p: int(p.name.split("-")[1].split(".")[0]))
            shards = [storage.publish_file(path, storage.join(out_uri, shard_name(i, compressed)), move=True)
                      for i, path in enumerate(written)]
    except duckdb.Error as error:
        raise QueryError(f"query {template.name} failed on duckdb: {_first_line(error)}") from None
    finally:
        con.close()
    log.info("duckdb: %d rows in %d shard(s) at %s", rows, len(shards), out_uri)
    return EngineResult(shards, rows, [], table_bytes, details)
