"""Split, vocabularies, embedding sizes and statistics: the DatasetShapes the builders use."""
import pandas as pd
import pytest

from data.loading import load_rows
from data.preparation import embedding_dim, prepare, tokenize
from netfab.errors import DataError
from netfab.storage import dataset_files
from tests.helpers import config_for, fixture_rows, write_ndjson
from data.fixture import FIXTURE_PATH

CONFIG = config_for("deep_v1").config


@pytest.fixture(scope="module")
def fixture_frame():
    return load_rows(dataset_files(str(FIXTURE_PATH)), CONFIG).frame


def test_split_is_seeded_and_sized(fixture_frame):
    first, again = prepare(fixture_frame, CONFIG), prepare(fixture_frame, CONFIG)
    assert (len(first.train), len(first.test)) == (1600, 400)
    assert first.test["impression_id"].tolist() == again.test["impression_id"].tolist()
    other = prepare(fixture_frame, config_for("deep_v1", seed=1).config)
    assert other.test["impression_id"].tolist() != first.test["impression_id"].tolist()
    assert not set(first.train["impression_id"]) & set(first.test["impression_id"])


def test_vocabularies_come_from_the_train_split_only(fixture_frame):
    prepared = prepare(fixture_frame, CONFIG)
    vocab = set(prepared.shapes.vocabularies["item_id"])
    assert vocab == set(prepared.train["item_id"])
    assert prepared.shapes.cardinality("item_id") == len(vocab) + 1
    assert prepared.summary["test_oov_rate"]["item_id"] > 0  # unseen items exist in test


def test_vocabulary_limits_are_applied(fixture_frame):
    config = config_for("deep_v1", max_vocab_size=50, min_category_count=2).config
    shapes = prepare(fixture_frame, config).shapes
    assert len(shapes.vocabularies["item_id"]) == 50
    assert len(shapes.vocabularies["device"]) == 3


@pytest.mark.parametrize("cardinality, expected", [(2, 2), (4, 3), (13, 7), (500, 24), (100000, 24)])
def test_embedding_size_rule(cardinality, expected):
    assert embedding_dim(cardinality, CONFIG) == expected


def test_fixed_embedding_dim_wins_over_the_rule():
    assert embedding_dim(5000, config_for("deep_v1", embedding_dim=7).config) == 7


def test_numeric_nulls_are_filled_with_the_training_mean(tmp_path):
    rows = fixture_rows(200)
    for row in rows[:20]:
        row["rating"] = None
    frame = load_rows(dataset_files(str(write_ndjson(tmp_path / "d.json", rows))), CONFIG).frame
    prepared = prepare(frame, CONFIG)
    mean = prepared.shapes.numeric_mean["rating"]
    both = pd.concat([prepared.train, prepared.test])
    assert both["rating"].notna().all()
    assert (both["rating"] == mean).sum() >= 20


def test_text_tokens_match_keras_standardisation():
    assert tokenize(pd.Series(["Cozy, Sunny-Loft near the BEACH!"]))[0] == ["cozy", "sunnyloft", "near", "the", "beach"]


def test_too_few_rows_for_a_split_is_an_error(tmp_path):
    frame = load_rows(dataset_files(str(write_ndjson(tmp_path / "d.json", fixture_rows(20)))), CONFIG).frame
    with pytest.raises(DataError, match="each side needs 10"):
        prepare(frame, CONFIG)


def test_single_class_split_is_an_error(tmp_path):
    rows = fixture_rows(100)
    for row in rows:
        row["booked"] = 0
    frame = load_rows(dataset_files(str(write_ndjson(tmp_path / "d.json", rows))), CONFIG).frame
    with pytest.raises(DataError, match="only label 0"):
        prepare(frame, CONFIG)
