"""Loading NDJSON through pyarrow: shards, gzip, sampling, and a clear message for every bad input."""
import gzip
import json

import pytest

from data.fixture import FIXTURE_PATH
from data.loading import load_rows
from netfab.errors import DataError
from netfab.storage import dataset_files
from tests.helpers import config_for, fixture_rows, write_ndjson

CONFIG = config_for("deep_v1").config


def load(path, config=CONFIG):
    return load_rows(dataset_files(str(path)), config)


def test_fixture_loads_with_the_configured_columns():
    frame = load(FIXTURE_PATH).frame
    assert len(frame) == 2000
    assert set(CONFIG.categorical_columns) <= set(frame.columns)
    assert "event_date" not in frame.columns  # columns the config does not use are dropped


def test_glob_of_gzipped_shards_equals_the_single_file(tmp_path):
    rows = fixture_rows(300)
    for i in range(3):
        with gzip.open(tmp_path / f"part-{i:05d}.json.gz", "wt") as stream:
            stream.writelines(line + "\n" for line in map(json.dumps, rows[i * 100:(i + 1) * 100]))
    sharded = load(tmp_path / "part-*.json.gz").frame
    single = load(write_ndjson(tmp_path / "all.json", rows)).frame
    assert len(sharded) == 300
    assert sharded.equals(single)


def test_folder_of_shards_is_a_dataset(tmp_path):
    write_ndjson(tmp_path / "a.json", fixture_rows(50))
    write_ndjson(tmp_path / "b.json", fixture_rows(70)[50:])
    assert len(load(tmp_path).frame) == 70


def test_missing_dataset_says_what_to_pass(tmp_path):
    with pytest.raises(DataError, match="does not exist; pass --dataset"):
        load(tmp_path / "nope.json")
    with pytest.raises(DataError, match="matches no files"):
        dataset_files(str(tmp_path))


def test_missing_column_names_column_role_and_file(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "price"} for row in fixture_rows(20)]
    path = write_ndjson(tmp_path / "no_price.json", rows)
    with pytest.raises(DataError, match=rf"{path} has no column 'price' \(named by numeric_columns"):
        load(path)


def test_malformed_line_names_file_and_line_number(tmp_path):
    lines = [json.dumps(r) for r in fixture_rows(30)]
    lines[16] = lines[16][:-5]  # line 17 cut short
    path = write_ndjson(tmp_path / "broken.json", lines)
    with pytest.raises(DataError, match=rf"{path}:17: malformed JSON"):
        load(path)


def test_line_that_is_not_an_object_is_named(tmp_path):
    path = write_ndjson(tmp_path / "list.json", fixture_rows(5) + ["[1, 2]"])
    with pytest.raises(DataError, match=rf"{path}:6: expected a JSON object per line"):
        load(path)


@pytest.mark.parametrize("column, value, role", [
    ("price", "cheap", "numeric_columns"),
    ("country", 44, "categorical_columns"),
    ("title", 3.5, "text_column"),
])
def test_wrong_type_names_file_line_column_and_value(tmp_path, column, value, role):
    rows = fixture_rows(40)
    rows[9][column] = value
    path = write_ndjson(tmp_path / "typed.json", rows)
    with pytest.raises(DataError) as error:
        load(path)
    message = str(error.value)
    assert f"{path}:10:" in message and f"'{column}' ({role})" in message
    assert json.dumps(value) in message


def test_wrong_type_in_every_row_is_caught_too(tmp_path):
    rows = fixture_rows(20)
    for row in rows:
        row["item_id"] = int(row["item_id"].split("_")[1])
    path = write_ndjson(tmp_path / "int_ids.json", rows)
    with pytest.raises(DataError, match=r":1: column 'item_id' .*CAST\(item_id AS STRING\)"):
        load(path)


@pytest.mark.parametrize("label", [2, -1, 0.5, "yes", None])
def test_label_must_be_zero_or_one(tmp_path, label):
    rows = fixture_rows(30)
    rows[4]["booked"] = label
    path = write_ndjson(tmp_path / "labels.json", rows)
    with pytest.raises(DataError, match=rf"{path}:5: column 'booked' \(label_column\).*0 or 1"):
        load(path)


def test_null_features_follow_the_policy(tmp_path):
    rows = fixture_rows(40)
    rows[0].update(country=None, title=None, price=None)
    del rows[1]["language"]  # absent from one row only: a null, not a missing column
    loaded = load(write_ndjson(tmp_path / "nulls.json", rows))
    frame = loaded.frame
    assert frame.loc[0, "country"] == "" and frame.loc[0, "title"] == ""
    assert frame.loc[1, "language"] == ""
    assert frame["price"].isna().sum() == 1  # filled with the training mean in preparation
    assert loaded.nulls["country"] == 1 and loaded.nulls["language"] == 1


def test_sample_rows_takes_a_seeded_uniform_sample_across_shards(tmp_path):
    rows = fixture_rows(1000)
    for i in range(4):
        write_ndjson(tmp_path / f"part-{i}.json", rows[i * 250:(i + 1) * 250])
    config = config_for("deep_v1", sample_rows=300).config
    first = load(tmp_path, config)
    again = load(tmp_path, config)
    assert len(first.frame) == 300 and first.rows_read == 1000
    assert first.frame.equals(again.frame)
    ids = set(first.frame["impression_id"])
    per_shard = [len(ids & {r["impression_id"] for r in rows[i * 250:(i + 1) * 250]}) for i in range(4)]
    assert all(40 <= n <= 110 for n in per_shard), per_shard  # every shard represented


def test_empty_shards_are_skipped_but_an_empty_dataset_is_an_error(tmp_path):
    (tmp_path / "part-0.json").write_text("")
    with pytest.raises(DataError, match="the dataset has no rows: 1 empty file"):
        load(tmp_path)
    write_ndjson(tmp_path / "part-1.json", fixture_rows(30))
    assert len(load(tmp_path).frame) == 30
