"""Loading NDJSON through pyarrow: shards, gzip, sampling, and a clear message for every bad input."""
import gzip
import json

import numpy as np
import pytest

from data.fixture import FIXTURE_PATH
from data.loading import load_rows
from netfab.errors import DataError
from netfab.storage import dataset_files
from tests.helpers import config_for, fixture_rows, write_ndjson

CONFIG = config_for("deep_v1").config


def load(path, config=CONFIG):
    return load_rows(dataset_files(str(path)), config)


def decoded(loaded, column) -> list[str]:
    """A loaded string column as its values again."""
    strings = loaded.strings[column]
    return [strings.values[code] for code in strings.codes]


def as_rows(loaded) -> list[tuple]:
    """Every row's loaded values, for comparing two loads."""
    columns = [decoded(loaded, c) for c in loaded.strings]
    columns += [list(map(repr, v)) for v in loaded.numbers.values()] + [list(loaded.label)]
    return list(zip(*columns))


def test_fixture_loads_the_configured_columns_as_compact_arrays():
    loaded = load(FIXTURE_PATH)
    assert loaded.rows == 2000 == loaded.rows_read
    assert set(loaded.strings) == set(CONFIG.categorical_columns) | set(CONFIG.text_columns)
    assert set(loaded.numbers) == set(CONFIG.numeric_columns)  # event_date, impression_id: never read
    assert all(s.codes.dtype == np.int32 for s in loaded.strings.values())
    assert all(v.dtype == np.float32 for v in loaded.numbers.values())
    rows = fixture_rows()
    assert decoded(loaded, "item_id") == [r["item_id"] for r in rows]
    assert np.allclose(loaded.numbers["price"], [r["price"] for r in rows])
    assert loaded.label.tolist() == [r["booked"] for r in rows]


def test_a_file_larger_than_a_block_is_read_block_by_block(tmp_path, monkeypatch):
    import data.loading

    monkeypatch.setattr(data.loading, "BLOCK_BYTES", 4096)  # ~15 rows a block
    path = write_ndjson(tmp_path / "d.json", fixture_rows(500))
    assert as_rows(load(path)) == as_rows(load(FIXTURE_PATH).take(np.arange(500)))


def test_glob_of_gzipped_shards_equals_the_single_file(tmp_path):
    rows = fixture_rows(300)
    for i in range(3):
        with gzip.open(tmp_path / f"part-{i:05d}.json.gz", "wt") as stream:
            stream.writelines(line + "\n" for line in map(json.dumps, rows[i * 100:(i + 1) * 100]))
    sharded = load(tmp_path / "part-*.json.gz")
    single = load(write_ndjson(tmp_path / "all.json", rows))
    assert sharded.rows == 300
    assert as_rows(sharded) == as_rows(single)


def test_folder_of_shards_is_a_dataset(tmp_path):
    write_ndjson(tmp_path / "a.json", fixture_rows(50))
    write_ndjson(tmp_path / "b.json", fixture_rows(70)[50:])
    assert load(tmp_path).rows == 70


def test_missing_dataset_says_what_to_pass(tmp_path):
    with pytest.raises(DataError, match="does not exist; pass --dataset"):
        load(tmp_path / "nope.json")
    with pytest.raises(DataError, match="matches no files"):
        dataset_files(str(tmp_path))


def test_missing_column_names_column_role_and_file(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "price"} for row in fixture_rows(20)]
    path = write_ndjson(tmp_path / "no_price.json", rows)
    with pytest.raises(DataError, match=rf"{path} has no column\(s\) 'price' \(numeric_columns\) named in the config"):
        load(path)


def test_a_named_id_column_missing_from_the_data_is_found_before_training(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "impression_id"} for row in fixture_rows(20)]
    path = write_ndjson(tmp_path / "no_id.json", rows)
    with pytest.raises(DataError, match=r"no column\(s\) 'impression_id' \(id_column\).*set id_column = \"\""):
        load(path)
    assert load(path, config_for("deep_v1", id_column="").config).rows == 20  # none: the row number


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
    ("title", 3.5, "text_columns"),
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


def test_integer_and_boolean_categoricals_are_categories_in_their_string_form(tmp_path):
    rows = fixture_rows(20)
    for i, row in enumerate(rows):
        row["item_id"] = int(row["item_id"].split("_")[1])
        row["device"] = i % 3 == 0 if i != 5 else None
    loaded = load(write_ndjson(tmp_path / "int_ids.json", rows))
    assert decoded(loaded, "item_id")[:2] == [str(rows[0]["item_id"]), str(rows[1]["item_id"])]
    assert decoded(loaded, "device")[:6] == ["true", "false", "false", "true", "false", ""]


def test_every_mistyped_column_of_a_file_is_named_in_one_message(tmp_path):
    rows = fixture_rows(30)
    rows[3]["price"] = "cheap"
    rows[7]["title"] = 12
    rows[12]["country"] = 44  # a number in a column of strings
    rows[20]["price"] = "dear"  # the same column again: named once, at its first line
    path = write_ndjson(tmp_path / "typed.json", rows)
    with pytest.raises(DataError) as error:
        load(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith("3 columns hold values of the wrong type")
    assert f"{path}:4: column 'price'" in message and f"{path}:8: column 'title'" in message
    assert f"{path}:13: column 'country'" in message and "dear" not in message


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
    assert decoded(loaded, "country")[0] == "" and decoded(loaded, "title")[0] == ""
    assert decoded(loaded, "language")[1] == ""
    assert np.isnan(loaded.numbers["price"]).sum() == 1  # the training mean, in the front end
    assert loaded.nulls["country"] == 1 and loaded.nulls["language"] == 1


def test_sample_rows_takes_a_seeded_uniform_sample_across_shards(tmp_path):
    rows = fixture_rows(1000)
    for i in range(4):
        write_ndjson(tmp_path / f"part-{i}.json", rows[i * 250:(i + 1) * 250])
    config = config_for("deep_v1", sample_rows=300).config
    first = load(tmp_path, config)
    again = load(tmp_path, config)
    assert first.rows == 300 and first.rows_read == 1000
    assert as_rows(first) == as_rows(again)
    # lead_time_days * 1e4 + price tells the fixture's rows apart well enough to find their shard
    key = lambda price, lead: round(price * 100) * 1000 + int(lead)  # noqa: E731
    sampled = {key(p, l) for p, l in zip(first.numbers["price"], first.numbers["lead_time_days"])}
    per_shard = [len(sampled & {key(r["price"], r["lead_time_days"]) for r in rows[i * 250:(i + 1) * 250]})
                 for i in range(4)]
    assert all(40 <= n <= 110 for n in per_shard), per_shard  # every shard represented


def test_empty_shards_are_skipped_but_an_empty_dataset_is_an_error(tmp_path):
    (tmp_path / "part-0.json").write_text("")
    with pytest.raises(DataError, match="the dataset has no rows: 1 empty file"):
        load(tmp_path)
    write_ndjson(tmp_path / "part-1.json", fixture_rows(30))
    assert load(tmp_path).rows == 30


# --- targets by task (netfab/tasks.py) --------------------------------------------------------------
def labels_of(loaded) -> list:
    return [loaded.label.values[code] for code in loaded.label.codes]


def test_multiclass_labels_are_strings_integers_or_booleans(tmp_path):
    rows = fixture_rows(12)
    for i, row in enumerate(rows):
        row["stars"] = i % 5 + 1
        row["kind"] = i % 2 == 0
    path = write_ndjson(tmp_path / "classes.json", rows)
    assert labels_of(load(path, config_for("deep_v1", task="multiclass", label_column="stars").config)) == \
        [str(i % 5 + 1) for i in range(12)]
    assert labels_of(load(path, config_for("deep_v1", task="multiclass", label_column="kind").config))[:2] == \
        ["true", "false"]
    assert labels_of(load(FIXTURE_PATH, config_for("trip_type_v1").config))[:2] == ["business", "business"]


def test_multilabel_tags_are_lists_and_null_or_empty_means_none(tmp_path):
    rows = fixture_rows(4)
    rows[0]["tags"], rows[1]["tags"], rows[2]["tags"], rows[3]["tags"] = ["a", "b"], None, [], ["b"]
    loaded = load(write_ndjson(tmp_path / "tags.json", rows), config_for("tags_v1").config)
    assert labels_of(loaded) == ["a\x1fb", "", "", "b"]


@pytest.mark.parametrize("variant, label, expected", [
    ("trip_type_v1", None, "one class per row"),
    ("trip_type_v1", "", "one class per row"),
    ("tags_v1", "beach", "a list of tags per row"),
    ("tags_v1", ["beach", None], "a list of tags per row"),
    ("review_score_v1", None, "holds a number"),
    ("review_score_v1", "high", "holds a number"),
])
def test_a_bad_label_names_the_line_and_what_the_task_needs(tmp_path, variant, label, expected):
    config = config_for(variant).config
    rows = fixture_rows(30)
    rows[6][config.label_column] = label
    path = write_ndjson(tmp_path / "labels.json", rows)
    with pytest.raises(DataError, match=rf"{path}:7: column '{config.label_column}' \(label_column\).*{expected}"):
        load(path, config)


# --- CSV and Parquet --------------------------------------------------------------------------------
def test_csv_and_parquet_load_what_ndjson_loads(tmp_path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = fixture_rows(60)
    rows[2].update(rating=None, country=None)
    ndjson = load(write_ndjson(tmp_path / "rows.json", rows))
    pd.DataFrame(rows).drop(columns=["tags"]).to_csv(tmp_path / "rows.csv.gz", index=False)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "rows.parquet")
    assert as_rows(load(tmp_path / "rows.csv.gz")) == as_rows(ndjson)
    assert as_rows(load(tmp_path / "rows.parquet")) == as_rows(ndjson)
    tags = config_for("tags_v1").config  # a Parquet list column holds tags as NDJSON does
    assert labels_of(load(tmp_path / "rows.parquet", tags)) == labels_of(load(tmp_path / "rows.json", tags))
    assert load(tmp_path, config_for("deep_v1").config).rows == 180  # a folder of the three formats


def test_csv_type_errors_name_every_column_and_line(tmp_path):
    lines = ["impression_id,country,language,device,day_of_week,season,item_id,price,rating,distance_km,"
             "nights,lead_time_days,title,booked"]
    for row in fixture_rows(20):
        lines.append(",".join(str(row[c]) if row[c] is not None else "" for c in lines[0].split(",")))
    lines[4] = lines[4].replace(lines[4].split(",")[7], "cheap", 1)
    lines[9] = lines[9].replace("," + lines[9].split(",")[10] + ",", ",far,", 1)
    path = tmp_path / "typed.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as error:
        load(path)
    message = str(error.value)
    assert message.startswith("2 columns") and f"{path}:5: column 'price'" in message
    assert f"{path}:10: column 'nights'" in message and '"far"' in message


def test_parquet_columns_of_the_wrong_type_are_named_together(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [dict(row, price=str(row["price"]), title=7) for row in fixture_rows(20)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "typed.parquet")
    with pytest.raises(DataError) as error:
        load(tmp_path / "typed.parquet")
    message = str(error.value)
    assert "column 'price' (numeric_columns) is string" in message
    assert "column 'title' (text_columns) is int64" in message


def test_a_csv_multilabel_dataset_says_which_formats_hold_tags(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="CSV file cannot hold a list per row.*NDJSON or Parquet"):
        load(path, config_for("tags_v1").config)


def test_list_columns_hold_lists_null_or_empty_and_refuse_a_null_item(tmp_path):
    rows = fixture_rows(5)
    rows[0]["facilities"], rows[1]["facilities"], rows[2]["facilities"] = ["pool", "gym"], None, []
    config = config_for("trip_type_v1").config
    loaded = load(write_ndjson(tmp_path / "lists.json", rows), config)
    assert decoded(loaded, "facilities")[:3] == ["pool\x1fgym", "", ""]
    rows[3]["facilities"] = ["pool", None]
    with pytest.raises(DataError, match=r"column 'facilities' \(list_columns\).*null item"):
        load(write_ndjson(tmp_path / "bad.json", rows), config)


def test_rows_without_a_label_load_when_no_label_is_asked_for(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "booked"} for row in fixture_rows(50)]
    path = write_ndjson(tmp_path / "logged.json", rows)
    with pytest.raises(DataError, match=r"no column\(s\) 'booked'"):
        load_rows([path], config_for().config)
    loaded = load_rows([path], config_for().config, labelled=False)
    assert loaded.rows == 50 and np.isnan(loaded.label).all()
    assert loaded.numbers["price"][0] == pytest.approx(rows[0]["price"])
