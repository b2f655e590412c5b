"""The production engine: BigQuery runs the query, then exports its result to Cloud Storage.

    from netfab.dataset import bigquery_engine
    result = bigquery_engine.run(template, values, "gs://my-bucket/datasets/q1", project="my-project",
                                 location="US", scratch_dataset="netfab_scratch", expiration_hours=24)

Steps, each logged with its job id:
  1. a dry run of the query with its parameters: the bytes it will scan (`--dry-run` stops here);
  2. the scratch dataset, created if missing with a default table expiration;
  3. a query job writing <project>.<scratch>.<query>_<time>_<random> (WRITE_TRUNCATE), whose
     expiration is then set to now + expiration_hours: BigQuery deletes it, nobody has to;
  4. an extract job of that table to <out>/part-*.json (NEWLINE_DELIMITED_JSON, optionally
     GZIP), which BigQuery numbers part-000000000000.json, part-000000000001.json, ...
While a job runs its state is logged every POLL_SECONDS; a failed job is reported with its id.
Credentials: Application Default Credentials, as for gs:// (netfab/storage/gcs.py); BIGQUERY_EMULATOR_HOST
sends every call to a local server instead, without credentials (the tests do that).
"""
import contextlib
import datetime
import logging
import os
import time
import uuid

from netfab import storage
from netfab.dataset.query import EngineResult
from netfab.errors import QueryError
from netfab.storage.gcs import LOGIN_HINT

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0
JOB_TIMEOUT_SECONDS = 6 * 3600  # give up waiting on one job after this


def client(project: str, location: str):
    import google.auth.exceptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    credentials = AnonymousCredentials() if os.environ.get("BIGQUERY_EMULATOR_HOST") else None
    try:
        return bigquery.Client(project=project, location=location, credentials=credentials)
    except google.auth.exceptions.DefaultCredentialsError:
        raise QueryError(f"no Google Cloud credentials found for BigQuery: {LOGIN_HINT}") from None


def query_parameters(template, values: dict) -> list:
    from google.cloud import bigquery

    return [bigquery.ScalarQueryParameter(name, template.params[name].type, value)
            for name, value in values.items()]


def run(template, values: dict, out_uri: str, project: str, location: str, scratch_dataset: str,
        expiration_hours: int, compressed: bool = False, dry_run: bool = False) -> EngineResult:
    from google.cloud import bigquery

    if not storage.is_gcs(out_uri):
        raise QueryError(f"--out={out_uri}: BigQuery exports only to Cloud Storage; pass "
                         f"--out=gs://BUCKET/PREFIX, or --engine=duckdb for a local dataset")
    bq = client(project, location)
    parameters = query_parameters(template, values)
    details = {"project": project, "location": location}

    # 1. Dry run: validates the SQL and the parameters, and says what the query will cost.
    with _errors(f"dry run of query {template.name}"):
        probe = bq.query(template.sql, job_config=bigquery.QueryJobConfig(
            dry_run=True, use_query_cache=False, query_parameters=parameters))
    scanned = probe.total_bytes_processed or 0
    log.info("dry run: query %s will process %.3f GB in project %s", template.name, scanned / 1e9, project)
    if dry_run:
        return EngineResult([], 0, [], scanned, details)

    # 2. The scratch dataset: its default expiration also catches a table whose patch never ran.
    expiration_ms = expiration_hours * 3600 * 1000
    scratch = bigquery.Dataset(f"{project}.{scratch_dataset}")
    scratch.location, scratch.default_table_expiration_ms = location, expiration_ms
    with _errors(f"create scratch dataset {project}.{scratch_dataset}"):
        bq.create_dataset(scratch, exists_ok=True)

    # 3. The query, into a table of its own.
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d_%H%M%S")
    table_id = f"{project}.{scratch_dataset}.{template.name}_{stamp}_{uuid.uuid4().hex[:8]}"
    with _errors(f"query {template.name}"):
        query_job = bq.query(template.sql, job_id_prefix=f"netfab_{template.name}_", job_config=bigquery.QueryJobConfig(
            destination=table_id, write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            query_parameters=parameters, labels={"netfab_query": template.name}))
    wait(query_job, f"query {template.name}")
    table = bigquery.Table(table_id)
    table.expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=expiration_hours)
    with _errors(f"set the expiration of {table_id}"):
        table = bq.update_table(table, ["expires"])
    rows = int(table.num_rows or 0)
    log.info("query job %s: %d rows, %.3f GB processed, %.3f GB billed -> %s (expires %s)",
             query_job.job_id, rows, (query_job.total_bytes_processed or 0) / 1e9,
             (query_job.total_bytes_billed or 0) / 1e9, table_id, table.expires)

    # 4. The export: BigQuery replaces the * with 12-digit shard numbers.
    pattern = storage.join(out_uri, "part-*.json" + (".gz" if compressed else ""))
    with _errors(f"export {table_id}"):
        extract_job = bq.extract_table(table_id, pattern, job_id_prefix=f"netfab_{template.name}_export_",
                                       job_config=bigquery.ExtractJobConfig(
                                           destination_format=bigquery.DestinationFormat.NEWLINE_DELIMITED_JSON,
                                           compression=bigquery.Compression.GZIP if compressed else bigquery.Compression.NONE))
    wait(extract_job, f"export of {table_id}")
    shards = [f for f in storage.list_files(out_uri) if f.rsplit("/", 1)[-1].startswith("part-")]
    log.info("extract job %s: %s file(s) at %s", extract_job.job_id,
             (extract_job.destination_uri_file_counts or ["?"])[0], pattern)
    details.update(destination_table=table_id, table_expires=table.expires.isoformat() if table.expires else None,
                   bytes_billed=query_job.total_bytes_billed)
    return EngineResult(shards, rows, [query_job.job_id, extract_job.job_id],
                        query_job.total_bytes_processed or scanned, details)


def wait(job, what: str, poll_seconds: float = POLL_SECONDS) -> None:
    """Poll a job until it is DONE, logging its state; a failed job raises QueryError with its id."""
    started = time.monotonic()
    while True:
        with _errors(f"{what} (job {job.job_id})"):
            job.reload()
        if job.state == "DONE":
            break
        elapsed = time.monotonic() - started
        if elapsed > JOB_TIMEOUT_SECONDS:
            raise QueryError(f"BigQuery job {job.job_id} ({what}) still {job.state} after "
                             f"{elapsed / 3600:.1f} h; see `bq show -j {job.job_id}`")
        log.info("%s: job %s %s, %.0f s", what, job.job_id, job.state, elapsed)
        time.sleep(poll_seconds)
    if job.error_result:
        reasons = "; ".join(e.get("message", "") for e in (job.errors or [])[:3] if e.get("message"))
        raise QueryError(f"BigQuery job {job.job_id} ({what}) failed: {job.error_result.get('message')}"
                         f"{f' ({reasons})' if reasons and reasons != job.error_result.get('message') else ''}; "
                         f"details: bq show -j {job.job_id}")


@contextlib.contextmanager
def _errors(what: str):
    """Turn a BigQuery API error into a QueryError naming the step (and its job id, if any)."""
    import google.auth.exceptions
    from google.api_core import exceptions as api

    try:
        yield
    except (google.auth.exceptions.DefaultCredentialsError, google.auth.exceptions.RefreshError):
        raise QueryError(f"{what}: Google Cloud credentials missing or expired: {LOGIN_HINT}") from None
    except (api.Forbidden, api.Unauthorized) as error:
        raise QueryError(f"{what}: permission denied ({error.message}); the account of your "
                         f"credentials needs roles/bigquery.jobUser on the project and read access "
                         f"to the tables; to use another account, {LOGIN_HINT}") from None
    except api.GoogleAPICallError as error:
        # The client's message spans lines ("...\n\nLocation: US\nJob ID: ..."): keep one line.
        message = "; ".join(line.strip() for line in str(error.message).splitlines() if line.strip())
        raise QueryError(f"BigQuery {what} failed: {message}") from None
