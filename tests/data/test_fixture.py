"""Tests of the booking-dataset generator (data/fixture.py), on real files in tmp_path.

Usage: python -m pytest tests/data/test_fixture.py
"""
import datetime as dt
import gzip
import json
import re

import pandas as pd
import pytest

from data.fixture import (CHUNK_ROWS, COUNTRIES, DEFAULT_SEED, FIXTURE_PATH, FIXTURE_ROWS,
                          booking_probability, write_fixture)
from netfab.errors import DataError
from netfab.train.metrics import roc_auc

COLUMNS = {  # name -> JSON types allowed, in file order
    "impression_id": (str,), "event_date": (str,), "country": (str,), "language": (str,),
    "device": (str,), "day_of_week": (str,), "season": (str,), "item_id": (str,),
    "price": (float,), "rating": (float, type(None)), "distance_km": (float,), "nights": (int,),
    "lead_time_days": (int,), "title": (str,), "booked": (int,), "trip_type": (str,), "tags": (list,),
    "facilities": (list, type(None)), "host_note": (str, type(None)), "review_score": (float, int),
}
SEASON_OF_MONTH = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
                   6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """The 2,000 default rows, written and parsed back the way a consumer would."""
    path = write_fixture(tmp_path_factory.mktemp("fixture") / "rows.json", FIXTURE_ROWS).path
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def frame(records):
    return pd.DataFrame(records)


def test_same_seed_writes_identical_bytes(tmp_path):
    first = write_fixture(tmp_path / "a.json", 3000, seed=11)
    second = write_fixture(tmp_path / "b.json", 3000, seed=11)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert (first.rows, first.label_rate) == (second.rows, second.label_rate)


def test_different_seed_writes_different_rows(tmp_path):
    one = write_fixture(tmp_path / "a.json", 3000, seed=11).path.read_text().splitlines()
    other = write_fixture(tmp_path / "b.json", 3000, seed=12).path.read_text().splitlines()
    assert sum(a != b for a, b in zip(one, other)) > 2900


@pytest.fixture(scope="module")
def larger_set(tmp_path_factory):
    """1.5 chunks of rows, so a smaller set can end in either chunk."""
    path = tmp_path_factory.mktemp("larger") / "rows.json"
    return write_fixture(path, CHUNK_ROWS + CHUNK_ROWS // 2).path.read_bytes()


@pytest.mark.parametrize("rows", [FIXTURE_ROWS, CHUNK_ROWS + 1])
def test_smaller_set_is_a_prefix_of_a_larger_one(tmp_path, larger_set, rows):
    smaller = write_fixture(tmp_path / "small.json", rows).path.read_bytes()
    assert smaller.count(b"\n") == rows
    assert larger_set.startswith(smaller)


def test_bundled_fixture_matches_a_fresh_generation(tmp_path):
    fresh = write_fixture(tmp_path / "fresh.json", FIXTURE_ROWS, DEFAULT_SEED).path
    assert FIXTURE_PATH.read_bytes() == fresh.read_bytes(), \
        "data/fixtures/sanity_2k.json is stale: regenerate it with `python -m data.fixture`"


def test_every_line_has_the_columns_in_order_with_their_types(records):
    assert len(records) == FIXTURE_ROWS
    for row in records:
        assert list(row) == list(COLUMNS)
        for name, types in COLUMNS.items():
            assert type(row[name]) in types, (name, row[name])


def test_values_are_in_their_documented_ranges(frame):
    assert frame["impression_id"].str.fullmatch(r"imp-\d{9}").all()
    assert frame["impression_id"].is_unique
    assert frame["item_id"].str.fullmatch(r"item_\d{5}").all()
    assert set(frame["country"]) <= set(COUNTRIES)
    assert set(frame["device"]) == {"mobile", "desktop", "tablet"}
    assert frame["price"].gt(0).all() and frame["price"].round(2).eq(frame["price"]).all()
    assert frame["rating"].dropna().between(1.0, 5.0).all()
    assert 0.005 < frame["rating"].isna().mean() < 0.05   # new listings have no rating yet
    assert frame["distance_km"].gt(0).all()
    assert frame["nights"].between(1, 14).all()
    assert frame["lead_time_days"].between(0, 365).all()
    assert frame["title"].str.split().str.len().between(3, 6).all()
    assert set(frame["booked"]) == {0, 1}


def test_day_of_week_and_season_follow_event_date(records):
    for row in records:
        date = dt.date.fromisoformat(row["event_date"])
        assert date.year == 2026
        assert row["day_of_week"] == date.strftime("%a").lower()
        assert row["season"] == SEASON_OF_MONTH[date.month]


def test_language_mostly_follows_country(frame):
    french = frame.loc[frame["country"] == "FR", "language"]
    assert (french == "fr").mean() > 0.7


def test_fixture_has_at_least_500_distinct_items(frame):
    assert frame["item_id"].nunique() >= 500


def test_label_rate_is_between_20_and_40_percent(frame):
    assert 0.20 <= frame["booked"].mean() <= 0.40


def test_true_probabilities_separate_bookings(frame):
    # The Bayes AUC bounds what any model can reach: >= 0.85 leaves room for a learned >= 0.70.
    assert roc_auc(frame["booked"], booking_probability(frame)) >= 0.85


def test_gzip_output_is_the_plain_output_compressed_and_stable(tmp_path):
    plain = write_fixture(tmp_path / "rows.json", 3000).path.read_bytes()
    packed = write_fixture(tmp_path / "rows.json.gz", 3000).path.read_bytes()
    assert gzip.decompress(packed) == plain
    # The gzip header holds no time or temp-file name, so the same rows give the same bytes.
    assert write_fixture(tmp_path / "again.json.gz", 3000).path.read_bytes() == packed


def test_write_leaves_only_the_target_file(tmp_path):
    write_fixture(tmp_path / "sub" / "rows.json", 10)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["rows.json"]


@pytest.mark.parametrize("rows", [0, -5])
def test_fewer_than_one_row_is_refused_before_writing(tmp_path, rows):
    with pytest.raises(DataError, match="rows must be at least 1"):
        write_fixture(tmp_path / "rows.json", rows)
    assert list(tmp_path.iterdir()) == []


def test_progress_reports_rows_per_second_on_stderr(tmp_path, capsys):
    write_fixture(tmp_path / "rows.json", 10, progress=True)
    assert re.search(r"10/10 rows, [\d,]+ rows/s", capsys.readouterr().err)



def test_the_other_tasks_targets_carry_their_planted_signal(frame):
    """trip_type, tags and review_score: every class and tag occurs, and each follows its rule."""
    from data.fixture import TAGS, TRIP_TYPES

    assert set(frame["trip_type"]) == set(TRIP_TYPES)
    weekday = frame["day_of_week"].isin(["mon", "tue", "wed", "thu"])
    business = frame["trip_type"].eq("business")
    assert business[weekday].mean() > business[~weekday].mean() + 0.1
    tags = frame["tags"]
    assert {t for row in tags for t in row} == set(TAGS) and tags.map(len).eq(0).any()
    beach = frame["title"].str.contains("beach")
    has_beach = tags.map(lambda row: "beach" in row)
    assert has_beach[beach].mean() > 0.7 and has_beach[~beach].mean() < 0.2
    rating = frame["rating"].fillna(4.0)
    assert frame["review_score"].between(1, 10).all()
    assert frame["review_score"].corr(rating) > 0.3
    assert frame["host_note"].isna().any() and frame["host_note"].nunique() > 10


def test_a_shifted_set_moves_countries_and_prices_only(tmp_path):
    import pandas as pd

    plain = pd.read_json(write_fixture(tmp_path / "a.json", 3000, seed=11).path, lines=True)
    shifted = pd.read_json(write_fixture(tmp_path / "b.json", 3000, seed=11, shift=True).path, lines=True)
    far = ["JP", "BR", "IN"]
    assert plain["country"].isin(far).mean() < 0.2 < 0.5 < shifted["country"].isin(far).mean()
    # The same draws otherwise: the same items, each price 1.6 times (to the cent).
    assert (plain["item_id"] == shifted["item_id"]).all()
    assert (shifted["price"] / plain["price"]).between(1.59, 1.61).all()
