"""The front end: three seeded splits, tables fitted on train only, every row encoded once."""
import numpy as np
import pandas as pd
import pytest

from data.fixture import FIXTURE_PATH
from data.loading import load_rows
from data.preparation import embedding_dim, prepare, split_indices, standardize, tokenize
from netfab.errors import DataError
from netfab.storage import dataset_files
from tests.helpers import config_for, fixture_rows, write_ndjson

CONFIG = config_for("deep_v1").config


def load(config=CONFIG, rows=None, tmp_path=None):
    path = FIXTURE_PATH if rows is None else write_ndjson(tmp_path / "d.json", rows)
    return load_rows(dataset_files(str(path)), config)


def test_three_splits_are_seeded_disjoint_and_sized():
    first, again = split_indices(2000, CONFIG), split_indices(2000, CONFIG)
    assert {k: len(v) for k, v in first.items()} == {"train": 1600, "validation": 200, "test": 200}
    assert all(np.array_equal(first[k], again[k]) for k in first)  # same seed, same rows
    other = split_indices(2000, config_for("deep_v1", seed=1).config)
    assert not np.array_equal(other["test"], first["test"])
    together = np.concatenate(list(first.values()))
    assert len(np.unique(together)) == 2000  # disjoint, and every row in one split
    shares = split_indices(2000, config_for("deep_v1", validation_fraction=0.25, test_fraction=0.05).config)
    assert {k: len(v) for k, v in shares.items()} == {"train": 1400, "validation": 500, "test": 100}


def test_prepared_splits_hold_the_rows_of_their_indices():
    loaded = load()
    labels = loaded.label.copy()
    prepared = prepare(loaded, CONFIG)
    index = split_indices(2000, CONFIG)
    for name in ("train", "validation", "test"):
        split = getattr(prepared, name)
        assert np.array_equal(split.label, labels[index[name]])
        assert all(len(v) == len(split) for v in split.features.values())
    assert prepared.summary["rows"] == {"total": 2000, "train": 1600, "validation": 200, "test": 200}


def test_vocabularies_come_from_the_train_split_only():
    train_items = {r["item_id"] for i, r in enumerate(fixture_rows()) if i in set(split_indices(2000, CONFIG)["train"])}
    prepared = prepare(load(), CONFIG)
    vocab = set(prepared.shapes.vocabularies["item_id"])
    assert vocab == train_items
    assert prepared.shapes.cardinality("item_id") == len(vocab) + 1
    assert prepared.summary["test_oov_rate"]["item_id"] > 0  # unseen items exist in test
    assert (prepared.test.features["item_id"] == 0).mean() == prepared.summary["test_oov_rate"]["item_id"]


def test_ids_follow_the_vocabulary_rank_and_unseen_values_are_zero():
    prepared = prepare(load(), CONFIG)
    vocabulary = prepared.shapes.vocabularies["device"]
    rows = fixture_rows()
    test_rows = [rows[i] for i in split_indices(2000, CONFIG)["test"]]
    expected = [vocabulary.index(r["device"]) + 1 for r in test_rows]
    assert prepared.test.features["device"].tolist() == expected
    assert prepared.test.features["device"].dtype == np.int32


def test_vocabulary_limits_are_applied():
    config = config_for("deep_v1", max_vocab_size=50, min_category_count=2).config
    shapes = prepare(load(config), config).shapes
    assert len(shapes.vocabularies["item_id"]) == 50
    assert len(shapes.vocabularies["device"]) == 3


@pytest.mark.parametrize("cardinality, expected", [(2, 2), (4, 3), (13, 7), (500, 24), (100000, 24)])
def test_embedding_size_rule(cardinality, expected):
    assert embedding_dim(cardinality, CONFIG) == expected


def test_fixed_embedding_dim_wins_over_the_rule():
    assert embedding_dim(5000, config_for("deep_v1", embedding_dim=7).config) == 7


def test_numbers_are_standardised_and_a_null_is_the_training_mean(tmp_path):
    rows = fixture_rows(200)
    for row in rows[:20]:
        row["rating"] = None
    prepared = prepare(load(rows=rows, tmp_path=tmp_path), CONFIG)
    ratings = np.concatenate([getattr(prepared, n).features["rating"] for n in ("train", "validation", "test")])
    assert not np.isnan(ratings).any()
    assert (ratings == 0).sum() >= 20  # (mean - mean) / std
    assert abs(prepared.train.features["rating"].mean()) < 0.1  # the train split is centred
    assert standardize(np.array([1.0, np.nan], np.float32), 1.0, 4.0).tolist() == [0.0, 0.0]


def test_text_tokens_match_keras_standardisation():
    assert tokenize(pd.Series(["Cozy, Sunny-Loft near the BEACH!"]))[0] == ["cozy", "sunnyloft", "near", "the", "beach"]


def test_text_becomes_padded_token_ids():
    prepared = prepare(load(), CONFIG)
    tokens = prepared.train.features["title"]
    assert tokens.shape == (1600, CONFIG.text_max_tokens) and tokens.dtype == np.int32
    vocabulary = prepared.shapes.text_vocabularies["title"]
    first = fixture_rows()[split_indices(2000, CONFIG)["train"][0]]["title"]
    words = tokenize(pd.Series([first]))[0]
    expected = [vocabulary.index(w) + 2 if w in vocabulary else 1 for w in words]
    assert tokens[0].tolist() == (expected + [0] * CONFIG.text_max_tokens)[:CONFIG.text_max_tokens]


def test_too_few_rows_for_a_split_is_an_error(tmp_path):
    with pytest.raises(DataError, match="train/validation/test split of 16/2/2 .* each split needs 10"):
        prepare(load(rows=fixture_rows(20), tmp_path=tmp_path), CONFIG)


def test_single_class_split_is_an_error(tmp_path):
    rows = fixture_rows(300)
    for row in rows:
        row["booked"] = 0
    with pytest.raises(DataError, match="only label 0"):
        prepare(load(rows=rows, tmp_path=tmp_path), CONFIG)


def test_a_column_empty_in_every_row_is_named(tmp_path):
    rows = fixture_rows(200)
    for row in rows:
        row["language"] = None
    with pytest.raises(DataError, match="categorical column 'language' has no value in the training split"):
        prepare(load(rows=rows, tmp_path=tmp_path), CONFIG)


@pytest.mark.parametrize("column, message", [
    ("title", "text column 'title' has no words in the training split"),
    ("price", "numeric column 'price' is null in every training row"),
])
def test_a_text_or_numeric_column_empty_in_every_row_is_named(tmp_path, column, message):
    rows = fixture_rows(200)
    for row in rows:
        row[column] = None
    with pytest.raises(DataError, match=message):
        prepare(load(rows=rows, tmp_path=tmp_path), CONFIG)


# --- targets by task ----------------------------------------------------------------------------------
def test_multiclass_classes_come_from_the_training_split_in_natural_order(tmp_path):
    rows = fixture_rows(300)
    for i, row in enumerate(rows):
        row["stars"] = [2, 10, 1][i % 3]
    config = config_for("deep_v1", task="multiclass", label_column="stars").config
    prepared = prepare(load(config, rows, tmp_path), config)
    assert prepared.shapes.classes == ["1", "2", "10"] and prepared.summary["classes"] == ["1", "2", "10"]
    assert set(np.unique(prepared.train.label)) == {0, 1, 2} and prepared.train.label.dtype == np.int32


def test_a_class_unseen_in_training_is_an_error_naming_it(tmp_path):
    rows = fixture_rows(300)
    config = config_for("trip_type_v1").config
    test_rows = split_indices(300, config)["test"]
    rows[int(test_rows[0])]["trip_type"] = "pilgrimage"
    with pytest.raises(DataError, match=r"class\(es\) 'pilgrimage' of the test split never occur in the training"):
        prepare(load(config, rows, tmp_path), config)


def test_multilabel_targets_are_multi_hot_rows_of_the_training_tags():
    config = config_for("tags_v1").config
    prepared = prepare(load(config), config)
    rows = fixture_rows()
    train = split_indices(len(rows), config)["train"]
    assert prepared.shapes.classes == ["beach", "nightlife", "parking", "quiet", "wifi"]
    first = rows[int(train[0])]["tags"]
    assert prepared.train.label[0].tolist() == [float(t in first) for t in prepared.shapes.classes]


def test_regression_records_the_target_scale_for_the_head(tmp_path):
    config = config_for("review_score_v1").config
    prepared = prepare(load(config), config)
    assert abs(prepared.shapes.label_mean - prepared.train.label.mean()) < 1e-4
    assert abs(prepared.shapes.label_std - prepared.train.label.std()) < 1e-4
    rows = fixture_rows(300)
    for row in rows:
        row["review_score"] = 7
    with pytest.raises(DataError, match="'review_score' holds one value in every training row"):
        prepare(load(config, rows, tmp_path), config)


def test_each_text_column_has_its_own_vocabulary():
    config = config_for("deep_v1", text_columns="title,host_note").config
    prepared = prepare(load(config), config)
    vocabularies = prepared.shapes.text_vocabularies
    assert set(vocabularies) == {"title", "host_note"}
    assert "villa" in vocabularies["title"] and "villa" not in vocabularies["host_note"]
    assert "wifi" in vocabularies["host_note"] and "wifi" not in vocabularies["title"]
    assert prepared.train.features["host_note"].shape == (1600, config.text_max_tokens)
    assert set(prepared.summary["text"]) == {"title", "host_note"}


# --- split = by_column ---------------------------------------------------------------------------------
def test_by_column_split_trains_on_the_past_and_tests_on_the_future():
    from data.preparation import split_rows

    config = config_for("deep_v1", split="by_column", split_column="event_date").config
    loaded = load(config)
    index = split_rows(loaded, config)
    prepared = prepare(loaded, config)
    dates = [row["event_date"] for row in fixture_rows()]
    of = {name: [dates[i] for i in rows] for name, rows in index.items()}
    assert max(of["train"]) < min(of["validation"]) and max(of["validation"]) < min(of["test"])
    assert 150 <= len(prepared.test) <= 250 and 150 <= len(prepared.validation) <= 250
    assert prepared.summary["split"] == {"method": "by_column", "column": "event_date",
                                         "validation_from": min(of["validation"]), "test_from": min(of["test"])}


def test_by_column_orders_numbers_by_value_and_keeps_a_group_together(tmp_path):
    rows = fixture_rows(300)
    for i, row in enumerate(rows):
        row["week"] = i // 10 + 1  # 30 groups of 10 rows: 1 .. 30, where "9" < "10" as text
    config = config_for("deep_v1", split="by_column", split_column="week").config
    loaded = load(config, rows, tmp_path)
    from data.preparation import split_rows

    index = split_rows(loaded, config)
    weeks = np.array([row["week"] for row in rows])
    assert weeks[index["train"]].max() == 24 and set(weeks[index["test"]]) == {28, 29, 30}
    assert all(len(set(weeks[index[name]]) & set(weeks[index[other]])) == 0
               for name in index for other in index if name != other)


def test_by_column_split_errors_name_the_column(tmp_path):
    from netfab.errors import ConfigError

    with pytest.raises(ConfigError, match="split_column = ''.*name a time or group column"):
        config_for("deep_v1", split="by_column")
    with pytest.raises(ConfigError, match="split_column = 'event_date'.*with split = by_column only"):
        config_for("deep_v1", split_column="event_date")
    rows = fixture_rows(200)
    rows[3]["event_date"] = None
    config = config_for("deep_v1", split="by_column", split_column="event_date").config
    with pytest.raises(DataError, match=r"split column 'event_date' is null or \"\" in 1 row"):
        prepare(load(config, rows, tmp_path), config)


def test_list_columns_become_padded_item_ids_from_the_training_vocabulary(tmp_path):
    rows = fixture_rows(300)
    config = config_for("trip_type_v1", list_max_items=3).config
    rows[0]["facilities"] = ["pool", "sauna", "gym", "spa", "pets"]  # sauna: never seen; 5 > 3 items
    rows[1]["facilities"] = None
    from data.preparation import split_rows

    loaded = load(config, rows, tmp_path)
    index = split_rows(loaded, config)
    prepared = prepare(loaded, config)
    vocabulary = prepared.shapes.vocabularies["facilities"]
    assert "sauna" not in vocabulary and set(vocabulary) <= {"pool", "gym", "breakfast", "kitchen", "spa", "pets"}
    ids = {}
    for name in ("train", "validation", "test"):
        for position, row in enumerate(index[name]):
            ids[int(row)] = prepared.__getattribute__(name).features["facilities"][position].tolist()
    assert ids[0] == [vocabulary.index("pool") + 2, 1, vocabulary.index("gym") + 2]  # cut at 3; 1 = unseen
    assert ids[1] == [0, 0, 0]  # null: no item
