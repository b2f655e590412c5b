"""`fab dataset`: query template + parameters -> engine -> newline-delimited JSON shards at a URI.

    from netfab.config import load_config
    from netfab.dataset.make import make_dataset
    result = make_dataset(load_config("deep_v1"), "gs://my-bucket/datasets/q1",
                          params={"start_date": "2026-01-01", "end_date": "2026-03-31"})

The config key `query` names data/queries/<query>.sql, written in BigQuery's dialect with
@named parameters, each declared in a comment line of the file:

    -- @param start_date DATE 2026-01-01  first event date included

(name, type: DATE | TIMESTAMP | INT64 | FLOAT64 | BOOL | STRING, default or `required`, what
it means). Engines (`engine`):
  bigquery  production: dry run (bytes scanned), query into an expiring table, extract job to
            <out>/part-*.json on Cloud Storage (netfab/dataset/bigquery_engine.py)
  duckdb    embedded: the same SQL transpiled by sqlglot, run over a local warehouse folder
            (netfab/dataset/duckdb_engine.py); the default when no GCP project is configured
Both write <out>/part-000000000000.json, ... and then, last, <out>/_dataset.json with the
query, its parameters, the engine, job ids and rows: training copies it into the model zip.
"""
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path

from netfab import storage
from netfab.config import parse_bool
from netfab.environment import PROJECT_ROOT
from netfab.errors import ConfigError, NotFoundError, QueryError, closest

log = logging.getLogger(__name__)
QUERIES_DIR = PROJECT_ROOT / "data" / "queries"
SIDECAR = "_dataset.json"
ENGINES = ("bigquery", "duckdb")
PROJECT_ENV = "GOOGLE_CLOUD_PROJECT"  # the project when NET_BQ_PROJECT is not set


PARAM_TYPES = {"DATE": datetime.date.fromisoformat, "TIMESTAMP": datetime.datetime.fromisoformat,
               "INT64": int, "FLOAT64": float, "BOOL": parse_bool, "STRING": str}
_PARAM_LINE = re.compile(r"^--\s*@param\s+(\w+)\s+(\w+)\s+(\S+)\s*(.*)$")


@dataclasses.dataclass(frozen=True)
class QueryParam:
    name: str
    type: str  # a key of PARAM_TYPES
    default: str | None  # None: required
    doc: str


@dataclasses.dataclass(frozen=True)
class QueryTemplate:
    name: str
    path: Path
    sql: str
    params: dict[str, QueryParam]

    def bind(self, given: dict[str, str]) -> dict[str, object]:
        """Typed values of every declared parameter: `given` (strings) over the defaults."""
        for name in given:
            if name not in self.params:
                raise QueryError(f"query {self.name} has no parameter {name!r}{closest(name, self.params)}; "
                                 f"its parameters ({self.path}): {', '.join(self.params) or 'none'}")
        values = {}
        for name, param in self.params.items():
            raw = given.get(name, param.default)
            if raw is None:
                raise QueryError(f"query {self.name} needs parameter {name} ({param.type}, {param.doc}); "
                                 f"pass --param={name}=VALUE")
            try:
                values[name] = PARAM_TYPES[param.type](str(raw))
            except ValueError:
                raise QueryError(f"parameter {name} = {raw!r} of query {self.name}: expected "
                                 f"{param.type}{' (YYYY-MM-DD)' if param.type == 'DATE' else ''}") from None
        if {"start_date", "end_date"} <= set(values) and values["start_date"] > values["end_date"]:
            raise QueryError(f"start_date {values['start_date']} is after end_date {values['end_date']}")
        return values


def load_query(name: str, folder: Path = QUERIES_DIR) -> QueryTemplate:
    """data/queries/<name>.sql with the parameters its `-- @param` lines declare."""
    path = Path(folder) / f"{name}.sql"
    if not path.is_file():
        known = sorted(p.stem for p in Path(folder).glob("*.sql"))
        raise ConfigError(f"query = {name!r}: no file {path}{closest(name, known)}; "
                          f"queries in {folder}: {', '.join(known) or 'none'}")
    sql = path.read_text()
    params = {}
    for number, line in enumerate(sql.splitlines(), start=1):
        if "@param" not in line or not line.lstrip().startswith("--"):
            continue
        match = _PARAM_LINE.match(line.strip())
        if not match or match.group(2) not in PARAM_TYPES:
            raise QueryError(f"{path}:{number}: expected '-- @param NAME TYPE DEFAULT|required  what it is' "
                             f"with TYPE one of {', '.join(PARAM_TYPES)}")
        pname, ptype, default, doc = match.groups()
        params[pname] = QueryParam(pname, ptype, None if default == "required" else default, doc.strip())
    return QueryTemplate(name, path, sql, params)


def parse_params(pairs: list[str], start: str | None = None, end: str | None = None) -> dict[str, str]:
    """`--param NAME=VALUE` options (and the --start/--end shortcuts) as {name: value}."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise QueryError(f"--param {pair!r}: expected NAME=VALUE, e.g. --param=end_date=2026-03-31")
        params[name.strip()] = value.strip()
    for name, value in (("start_date", start), ("end_date", end)):
        if value is not None:
            params[name] = value
    return params


@dataclasses.dataclass(frozen=True)
class DatasetResult:
    uri: str
    engine: str
    query: str
    parameters: dict[str, str]
    rows: int
    shards: list[str]
    job_ids: list[str]
    bytes_processed: int | None
    seconds: float
    dry_run: bool


def bq_project(config, environ=None) -> str:
    """The GCP project of the BigQuery jobs: NET_BQ_PROJECT / bq_project, else GOOGLE_CLOUD_PROJECT."""
    environ = os.environ if environ is None else environ
    return config.bq_project or environ.get(PROJECT_ENV, "")


def choose_engine(config, engine: str | None, environ=None) -> str:
    if engine is None:
        return "bigquery" if bq_project(config, environ) else "duckdb"
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}{closest(engine, ENGINES)}; engines: {', '.join(ENGINES)}")
    return engine


def make_dataset(effective, out_uri: str, params: dict[str, str] | None = None,
                 engine: str | None = None, dry_run: bool = False, overwrite: bool = False) -> DatasetResult:
    """Run the config's query on an engine and write its rows as shards (and the sidecar) at `out_uri`."""
    config, started = effective.config, time.monotonic()
    template = load_query(config.query)
    values = template.bind(params or {})
    engine = choose_engine(config, engine)
    compressed = config.export_compression == "gzip"
    if not dry_run:
        _clear_output(out_uri, overwrite)
    log.info("query %s (%s) with %s on %s -> %s", template.name, template.path,
             ", ".join(f"{k}={v}" for k, v in values.items()) or "no parameters", engine, out_uri)
    if engine == "bigquery":
        from netfab.dataset import bigquery_engine

        project = bq_project(config)
        if not project:
            raise ConfigError(f"the bigquery engine needs a GCP project: set NET_BQ_PROJECT (or "
                              f"{PROJECT_ENV}), or use --engine=duckdb")
        result = bigquery_engine.run(template, values, out_uri, project=project,
                                     location=config.bq_location, scratch_dataset=config.bq_scratch_dataset,
                                     expiration_hours=config.bq_table_expiration_hours,
                                     compressed=compressed, dry_run=dry_run)
    else:
        from netfab.dataset import duckdb_engine

        result = duckdb_engine.run(template, values, out_uri, warehouse=config.warehouse,
                                   compressed=compressed, dry_run=dry_run)
    parameters = {k: str(v) for k, v in values.items()}
    if not dry_run:
        if result.rows == 0:
            raise QueryError(f"query {template.name} returned no rows for {parameters}; widen the "
                             f"parameters (e.g. the date range)")
        sidecar = {
            "query": template.name, "query_file": f"data/queries/{template.path.name}",
            "query_sha256": hashlib.sha256(template.sql.encode()).hexdigest(), "sql": template.sql,
            "parameters": parameters, "engine": engine, "job_ids": result.job_ids,
            "rows": result.rows, "shards": [s.rsplit("/", 1)[-1] for s in result.shards],
            "bytes_processed": result.bytes_processed, "variant": effective.variant,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **result.details}
        storage.publish_text(json.dumps(sidecar, indent=1), storage.join(out_uri, SIDECAR))
    return DatasetResult(out_uri, engine, template.name, parameters, result.rows, result.shards,
                         result.job_ids, result.bytes_processed,
                         round(time.monotonic() - started, 1), dry_run)


def _clear_output(out_uri: str, overwrite: bool) -> None:
    """Refuse to mix shards with an earlier dataset at `out_uri`, or delete it with overwrite."""
    existing = [u for u in storage.list_files(out_uri)
                if u.rsplit("/", 1)[-1].startswith("part-") or u.endswith("/" + SIDECAR)]
    if existing and not overwrite:
        raise QueryError(f"{out_uri} already holds a dataset ({len(existing)} file(s), e.g. "
                         f"{existing[0]}); pass --overwrite to replace it, or choose another --out")
    for uri in sorted(existing, key=lambda u: not u.endswith(SIDECAR)):  # the sidecar first
        storage.delete(uri)
    if existing:
        log.info("deleted %d file(s) of the earlier dataset at %s", len(existing), out_uri)


def read_provenance(dataset_uri: str) -> dict | None:
    """The _dataset.json that `fab dataset` wrote beside a dataset's shards, or None."""
    try:
        path = storage.fetch_file(storage.join(storage.folder_of(dataset_uri), SIDECAR))
    except NotFoundError:
        return None
    return json.loads(path.read_text())
