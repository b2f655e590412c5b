"""Query templates, their parameters, and the duckdb engine over the sample warehouse."""
import gzip
import json

import pytest

from data.warehouse import write_warehouse
from netfab.dataset import duckdb_engine
from netfab.config import load_config
from netfab.dataset.make import load_query, make_dataset, parse_params, read_provenance
from netfab.errors import ConfigError, QueryError
from tests.helpers import fixture_rows


@pytest.fixture(autouse=True)
def no_gcp_project(monkeypatch):
    """These tests are about the embedded engine, chosen when no GCP project is configured."""
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """The sample warehouse cut from the fixture's 2,000 rows."""
    return write_warehouse(tmp_path_factory.mktemp("warehouse"), rows=2000).path


def config_with(warehouse, **env):
    return load_config("deep_v1", environ={"NET_WAREHOUSE": str(warehouse),
                                           **{f"NET_{k.upper()}": str(v) for k, v in env.items()}})


def test_the_query_declares_its_parameters():
    template = load_query("training_rows")
    assert {name: (p.type, p.default) for name, p in template.params.items()} == {
        "start_date": ("DATE", "2026-01-01"), "end_date": ("DATE", "2026-12-31")}
    assert str(template.bind({"end_date": "2026-03-31"})["end_date"]) == "2026-03-31"


@pytest.mark.parametrize("given, expected", [
    ({"end_dat": "2026-03-31"}, r"no parameter 'end_dat' \(did you mean 'end_date'\?\)"),
    ({"end_date": "31/03/2026"}, r"end_date = '31/03/2026' of query training_rows: expected DATE \(YYYY-MM-DD\)"),
    ({"start_date": "2026-05-01", "end_date": "2026-04-01"}, "start_date 2026-05-01 is after end_date"),
])
def test_bad_parameters_are_refused_with_what_to_do(given, expected):
    with pytest.raises(QueryError, match=expected):
        load_query("training_rows").bind(given)


def test_bool_parameters_take_the_config_yes_no_words(tmp_path):
    (tmp_path / "flagged.sql").write_text("-- @param only_booked BOOL off  keep booked rows only\n"
                                          "SELECT * FROM t WHERE @only_booked\n")
    template = load_query("flagged", tmp_path)
    assert template.bind({}) == {"only_booked": False}
    assert template.bind({"only_booked": "on"}) == {"only_booked": True}
    assert template.bind({"only_booked": "yes"}) == {"only_booked": True}
    with pytest.raises(QueryError, match="only_booked = 'maybe' of query flagged: expected BOOL"):
        template.bind({"only_booked": "maybe"})


def test_unknown_query_names_the_closest():
    with pytest.raises(ConfigError, match=r"query = 'training_row'.*did you mean 'training_rows'"):
        load_query("training_row")


def test_param_options_parse_with_the_date_shortcuts():
    assert parse_params(["min_price=10", "country = FR"], start="2026-01-01") == {
        "min_price": "10", "country": "FR", "start_date": "2026-01-01"}
    with pytest.raises(QueryError, match="expected NAME=VALUE"):
        parse_params(["end_date"])


def test_the_query_rebuilds_the_fixture_rows_from_the_warehouse(warehouse):
    """users + listings + impressions + bookings, joined back: exactly the generator's rows (the
    booking task's columns: the warehouse holds no trip type, tags, review score, host note or
    facilities), so the planted signal survives (cancelled bookings are not labels)."""
    template = load_query("training_rows")
    sql = duckdb_engine.transpile(template.sql, template.bind({}))
    con, _ = duckdb_engine.connect(warehouse, duckdb_engine.tables_read(template.sql))
    columns = [d[0] for d in con.execute(sql).description]
    rows = [dict(zip(columns, values)) for values in con.execute(sql).fetchall()]
    expected = [{column: row[column] for column in columns} for row in fixture_rows()]
    assert set(columns) < set(fixture_rows()[0])
    assert len(rows) == len(expected) == 2000
    for got, want in zip(rows, expected):
        assert {**got, "booked": int(got["booked"])} == {k: (None if v is None else v) for k, v in want.items()}


def test_date_range_filters_rows(warehouse, tmp_path):
    result = make_dataset(config_with(warehouse), str(tmp_path / "ds"), engine="duckdb",
                          params={"start_date": "2026-03-01", "end_date": "2026-03-31"})
    rows = [json.loads(line) for line in (tmp_path / "ds" / "part-000000000000.json").read_text().splitlines()]
    assert result.rows == len(rows) > 100
    assert all("2026-03-01" <= row["event_date"] <= "2026-03-31" for row in rows)
    assert all(isinstance(row["booked"], bool) and isinstance(row["nights"], float) for row in rows)


def test_large_results_are_split_into_ordered_shards(tmp_path):
    from netfab.dataset.query import shard_name

    warehouse, out = write_warehouse(tmp_path / "wh", rows=5000).path, tmp_path / "ds"
    template = load_query("training_rows")
    result = duckdb_engine.run(template, template.bind({}), str(out), warehouse=str(warehouse),
                               shard_bytes="500KB")
    names = sorted(p.name for p in out.iterdir())
    assert len(names) >= 2 and names == [shard_name(i, False) for i in range(len(names))]
    ids = [json.loads(line)["impression_id"] for name in names for line in (out / name).read_text().splitlines()]
    assert ids == sorted(ids) and len(ids) == result.rows == 5000  # in order, no row twice


def test_gzip_shards_and_their_sidecar(warehouse, tmp_path):
    made = make_dataset(config_with(warehouse, export_compression="gzip"), str(tmp_path / "ds"))
    assert made.engine == "duckdb"  # no GCP project configured
    shard = tmp_path / "ds" / "part-000000000000.json.gz"
    assert len(gzip.decompress(shard.read_bytes()).decode().splitlines()) == made.rows == 2000
    provenance = read_provenance(str(tmp_path / "ds" / "part-*.json.gz"))
    assert provenance["engine"] == "duckdb" and provenance["rows"] == 2000
    assert provenance["shards"] == ["part-000000000000.json.gz"]


def test_existing_dataset_is_kept_unless_overwrite(warehouse, tmp_path):
    out = tmp_path / "ds"
    make_dataset(config_with(warehouse), str(out), params={"end_date": "2026-06-30"})
    with pytest.raises(QueryError, match="already holds a dataset.*--overwrite"):
        make_dataset(config_with(warehouse), str(out))
    make_dataset(config_with(warehouse), str(out), params={"end_date": "2026-01-31"}, overwrite=True)
    assert read_provenance(str(out))["parameters"]["end_date"] == "2026-01-31"


def test_missing_table_names_the_warehouse_tables(warehouse, tmp_path):
    (tmp_path / "wh").mkdir()
    (tmp_path / "wh" / "travel.users.ndjson").write_text('{"user_id": 1}\n')
    with pytest.raises(QueryError, match=r"reads travel.bookings, travel.impressions, travel.listings, "
                                         r"not in warehouse .*tables there: travel.users"):
        make_dataset(config_with(tmp_path / "wh"), str(tmp_path / "ds"))


def test_dry_run_checks_the_sql_and_writes_nothing(warehouse, tmp_path):
    result = make_dataset(config_with(warehouse), str(tmp_path / "ds"), dry_run=True)
    assert result.dry_run and result.bytes_processed > 0 and not (tmp_path / "ds").exists()


def test_sql_errors_name_the_engine(warehouse, tmp_path):
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "broken.sql").write_text("SELECT no_such_column FROM `travel.users`\n")
    template = load_query("broken", folder=queries)
    with pytest.raises(QueryError, match="query broken failed on duckdb:.*no_such_column"):
        duckdb_engine.run(template, {}, str(tmp_path / "ds"), warehouse=str(warehouse))


def test_default_warehouse_is_made_when_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default warehouse, data/warehouse, is relative
    monkeypatch.setattr(duckdb_engine, "SAMPLE_ROWS", 500)
    result = make_dataset(load_config("deep_v1", environ={}), "out")
    assert result.rows == 500 and (tmp_path / "data" / "warehouse" / "travel.impressions.parquet").exists()
