"""The bigquery engine against tests/servers.FakeBigQuery, with the real GCS emulator for its exports.

What is faked and why: no BigQuery emulator that runs here supports extract jobs (bqemulator
needs a DuckDB extension it cannot download; crucible-emulator supports neither extract jobs
nor query parameters), and the real service needs a cloud account. FakeBigQuery answers the
BigQuery v2 REST calls the engine makes (jobs.insert, jobs.get, datasets.insert, tables.patch)
and records them. What is real: the official google-cloud-bigquery client builds every request
(so the job configurations asserted here are what BigQuery would receive); the query's SQL is
executed by DuckDB over the sample warehouse, transpiled as the duckdb engine does; the extract
job writes its shards, encoded as BigQuery exports them (INT64 as strings, NULL fields left
out), into the real GCS emulator, where training's loader reads them.
"""
import datetime
import json
import re

import pytest

from data.loading import load_rows
from data.warehouse import write_warehouse
from netfab import storage
from netfab.config import load_config
from netfab.dataset.make import load_query, make_dataset
from netfab.errors import QueryError
from tests.helpers import run_fab
from tests.servers import FakeBigQuery

PROJECT_ID = "netfab-test-project"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return write_warehouse(tmp_path_factory.mktemp("warehouse"), rows=2000).path


@pytest.fixture
def bigquery(gcs, warehouse, monkeypatch):
    fake = FakeBigQuery(warehouse, gcs.client)
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", fake.url)
    monkeypatch.setenv("NET_BQ_PROJECT", PROJECT_ID)
    monkeypatch.setattr("netfab.dataset.bigquery_engine.POLL_SECONDS", 0.05)
    yield fake
    fake.stop()


def config(**env):
    return load_config("deep_v1", environ={"NET_BQ_PROJECT": PROJECT_ID,
                                           **{f"NET_{k.upper()}": str(v) for k, v in env.items()}})


@pytest.mark.parametrize("compression, suffix", [("none", ".json"), ("gzip", ".json.gz")])
def test_dry_run_query_and_extract_jobs(bigquery, gcs, compression, suffix):
    out = gcs.uri("datasets/q1")
    before = datetime.datetime.now(datetime.timezone.utc)
    result = make_dataset(config(export_compression=compression), out, params={"end_date": "2026-06-30"})
    assert result.engine == "bigquery"  # a project is configured

    dry, query = bigquery.job_configs("query")
    assert dry["dryRun"] is True and dry["query"]["useQueryCache"] is False
    assert dry["query"]["query"] == query["query"]["query"] == load_query("training_rows").sql
    assert query["query"]["useLegacySql"] is False
    assert {(p["name"], p["parameterType"]["type"], p["parameterValue"]["value"])
            for p in query["query"]["queryParameters"]} == {
        ("start_date", "DATE", "2026-01-01"), ("end_date", "DATE", "2026-06-30")}
    destination = query["query"]["destinationTable"]
    assert destination["projectId"] == PROJECT_ID and destination["datasetId"] == "netfab_scratch"
    assert destination["tableId"].startswith("training_rows_")
    assert query["query"]["writeDisposition"] == "WRITE_TRUNCATE"

    # The result table expires: the scratch dataset's default, and the table's own expiration.
    [(_, _, scratch)] = [c for c in bigquery.calls if c[0] == "POST" and c[1].endswith("/datasets")]
    assert scratch["defaultTableExpirationMs"] == str(24 * 3600 * 1000) and scratch["location"] == "US"
    [(_, patched_path, patch)] = [c for c in bigquery.calls if c[0] == "PATCH"]
    assert patched_path.endswith(f"/tables/{destination['tableId']}")
    expires = datetime.datetime.fromtimestamp(int(patch["expirationTime"]) / 1000, datetime.timezone.utc)
    assert datetime.timedelta(hours=23.9) < expires - before < datetime.timedelta(hours=24.1)

    [extract] = bigquery.job_configs("extract")
    assert extract["extract"]["sourceTable"] == destination
    assert extract["extract"]["destinationUris"] == [f"{out}/part-*{suffix}"]
    assert extract["extract"]["destinationFormat"] == "NEWLINE_DELIMITED_JSON"
    assert extract["extract"]["compression"] == compression.upper()

    # Jobs were polled while running, and their ids are in the sidecar and the result.
    job_ids = [p.rsplit("/", 1)[1] for m, p, _ in bigquery.calls if m == "GET" and "/jobs/" in p]
    assert job_ids.count(result.job_ids[0]) >= 2 and result.job_ids[1] in job_ids
    assert gcs.names("datasets/") == ["datasets/q1/_dataset.json", f"datasets/q1/part-000000000000{suffix}"]
    sidecar = json.loads(storage.fetch_file(f"{out}/_dataset.json").read_text())
    assert sidecar["engine"] == "bigquery" and sidecar["job_ids"] == result.job_ids
    assert sidecar["destination_table"] == f"{PROJECT_ID}.netfab_scratch.{destination['tableId']}"
    assert sidecar["parameters"] == {"start_date": "2026-01-01", "end_date": "2026-06-30"}

    # The export, as BigQuery encodes it, loads for training: the query's casts are what make it so.
    loaded = load_rows(storage.dataset_files(out), load_config().config)
    assert loaded.rows_read == result.rows == sidecar["rows"] > 500
    assert set(loaded.label.tolist()) == {0, 1}


def test_dry_run_option_stops_after_the_dry_run(bigquery, gcs):
    result = run_fab("dataset", f"--out={gcs.uri('datasets/dry')}", "--dry-run",
                     env={"BIGQUERY_EMULATOR_HOST": bigquery.url, "NET_BQ_PROJECT": PROJECT_ID})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dry run: query training_rows on bigquery is valid, 123.5 MB scanned; nothing written" in result.stdout
    assert [m for m, p, b in bigquery.calls] == ["POST"]
    assert bigquery.calls[0][2]["configuration"]["dryRun"] is True
    assert gcs.names("datasets/") == []


def test_failed_query_job_is_reported_with_its_id(bigquery, gcs):
    bigquery.fail_query = "Unrecognized name: pricee at [23:5]"
    result = run_fab("dataset", f"--out={gcs.uri('datasets/bad')}",
                     env={"BIGQUERY_EMULATOR_HOST": bigquery.url, "NET_BQ_PROJECT": PROJECT_ID})
    assert result.returncode == 1
    match = re.search(r"error: BigQuery job (netfab_training_rows_\S+) \(query training_rows\) failed: "
                      r"Unrecognized name: pricee at \[23:5\]; details: bq show -j (\S+)", result.stderr)
    assert match and match.group(1) == match.group(2), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not bigquery.job_configs("extract") and gcs.names("datasets/") == []


def test_invalid_sql_fails_at_the_dry_run_with_bigquerys_message(bigquery, gcs):
    bigquery.fail_dry_run = "Syntax error: Unexpected keyword FROM at [12:3]"
    with pytest.raises(QueryError, match=r"BigQuery dry run of query training_rows failed: .*"
                                         r"Syntax error: Unexpected keyword FROM at \[12:3\]"):
        make_dataset(config(), gcs.uri("datasets/bad"))
    assert len(bigquery.calls) == 1


def test_bigquery_needs_a_cloud_storage_output(bigquery, tmp_path):
    with pytest.raises(QueryError, match="BigQuery exports only to Cloud Storage.*--out=gs://"):
        make_dataset(config(), str(tmp_path / "local"))
