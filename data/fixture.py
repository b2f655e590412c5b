"""Deterministic generator of a realistic hotel-booking dataset (newline-delimited JSON).

Usage:
    python -m data.fixture      # regenerate data/fixtures/sanity_2k.json after changing this file
    from data.fixture import write_fixture; write_fixture("/tmp/big.json.gz", rows=1_000_000, progress=True)

Each row is one impression of a listing; `booked` (0/1) is the label. The bytes depend only
on (rows, seed): chunk k is drawn from default_rng([seed, k]) at its full CHUNK_ROWS size and
then truncated, so the first K rows of an N-row set are the K-row set.

Planted signal (what a model should find; booked ~ Bernoulli(sigmoid(logit))):
    logit = BASE_LOGIT
          + COUNTRY_EFFECT[country] + DEVICE_EFFECT[device] + SEASON_EFFECT[season]
          + PRICE_SLOPE[season] * log(price / 100)    # price hurts, least in summer, most in winter
          + RATING_SLOPE * (rating - NEUTRAL_RATING)   # null rating (new listing) counts as neutral
          + DISTANCE_SLOPE * distance_km
          + MOBILE_WEEKEND * (device == mobile and day_of_week in sat/sun)   # the interaction
          + sum of WORD_EFFECT over the title's words  # "luxury", "beach" up; "noisy", "basement" down
          + a small per-item effect (normal, sd ITEM_EFFECT_SD), fixed in the catalogue
language, nights and lead_time_days carry no signal: they are realistic distractors.

The other tasks' targets (netfab/tasks.py), drawn after `booked` so that every column above keeps
its bytes:
    trip_type     multiclass, one of TRIP_TYPES ~ softmax(TRIP_SCALE * trip_logits): business on
                  weekdays, desktops, short stays and central titles; family on long stays, in
                  summer and in villas; couple on weekends and in luxury/sea-view titles; solo in
                  rooms, studios and cheap listings
    tags          multilabel, a list of TAGS (often []): each tag on its own with the probability
                  of TAG_PROBABILITY[tag] (high when its title words or its device say so)
    facilities    a list-valued column: 0 to 3 of FACILITIES per listing (null for some), from the
                  host notes' stream; trip_type leans on it (FACILITY_TRIP: a pool or a kitchen
                  draws families, a gym business)
    host_note     a second text column: the listing's note from its host (null for some), 1-2
                  HOST_PHRASES drawn per listing from their own stream; it carries no signal
    review_score  regression, 1 to 10: REVIEW_BASE + REVIEW_RATING_SLOPE * (rating - 4)
                  + REVIEW_WORD_SCALE * the title's word effects + DEVICE_REVIEW[device] + N(0, REVIEW_NOISE)

shift=True draws from a moved population, the same booking rule on other rows (for drift tests):
countries weighted SHIFTED_COUNTRY_WEIGHTS (JP, BR and IN from a tenth of the rows to over half)
and every price SHIFTED_PRICE_FACTOR times higher. The default (shift=False) rows are unchanged.
"""
import gzip
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from netfab.errors import DataError
from netfab.storage import atomic_path

DEFAULT_SEED = 7
FIXTURE_ROWS = 2000
FIXTURE_PATH = Path(__file__).resolve().parent / "fixtures" / "sanity_2k.json"
CHUNK_ROWS = 100_000      # rows drawn per rng stream; changing it changes every dataset's bytes
JSON_SLICE_ROWS = 20_000  # to_json per slice: ~20% faster than one 30 MB string per chunk
GZIP_LEVEL = 6            # zlib's default: level 9 is ~2.4x slower for ~6% smaller files

# The listing catalogue is the same for every seed (the same hotels exist whatever the sample);
# the seed only decides which impressions are drawn.
CATALOG_SEED = 2026
N_ITEMS = 5000
ZIPF_EXPONENT = 0.9       # popularity of the item at rank r ~ r**-0.9: top item ~7% of rows
NEW_LISTING_SHARE = 0.03  # items without a rating yet: ~2% of rows with this catalogue

COUNTRIES = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "JP", "BR", "CA", "AU", "IN"]
COUNTRY_WEIGHTS = [0.24, 0.14, 0.13, 0.11, 0.08, 0.07, 0.05, 0.05, 0.04, 0.04, 0.03, 0.02]
COUNTRY_LANGUAGE = ["en", "en", "de", "fr", "es", "it", "nl", "ja", "pt", "en", "en", "en"]
LANGUAGES = sorted(set(COUNTRY_LANGUAGE))
SHIFTED_COUNTRY_WEIGHTS = [0.08, 0.05, 0.05, 0.05, 0.04, 0.04, 0.03, 0.18, 0.2, 0.04, 0.04, 0.2]
SHIFTED_PRICE_FACTOR = 1.6
HOME_LANGUAGE_SHARE = 0.85   # the rest browse in a uniformly drawn language
DEVICES, DEVICE_WEIGHTS = ["mobile", "desktop", "tablet"], [0.55, 0.35, 0.10]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SEASONS = ["winter", "spring", "summer", "autumn"]
SEASON_PRICE_FACTOR = [0.85, 1.0, 1.3, 0.95]

BASE_LOGIT = -1.1
COUNTRY_EFFECT = dict(zip(COUNTRIES, [0.3, 0.15, 0.6, 0.0, 0.3, 0.15, 0.0, -0.6, -1.0, 0.15, 0.0, -1.3]))
DEVICE_EFFECT = {"mobile": -0.9, "desktop": 0.6, "tablet": 0.0}
SEASON_EFFECT = {"winter": -0.6, "spring": 0.15, "summer": 0.75, "autumn": 0.0}
PRICE_SLOPE = {"winter": -3.0, "spring": -2.0, "summer": -0.9, "autumn": -2.0}
RATING_SLOPE = 1.8       # per star
NEUTRAL_RATING = 4.0     # stands in for a new listing's null rating
DISTANCE_SLOPE = -0.4     # per km
MOBILE_WEEKEND = 2.7
ITEM_EFFECT_SD = 0.3

# Titles: 1-2 adjectives + a place + a feature phrase = 3 to 6 words.
ADJECTIVES = ["cozy", "bright", "spacious", "modern", "charming", "renovated", "luxury",
              "simple", "compact", "dated", "noisy"]
PLACES = ["studio", "loft", "apartment", "room", "suite", "villa", "cabin", "flat"]
FEATURES = ["near the beach", "with balcony", "with sea view", "in old town", "downtown",
            "near station", "with parking", "with garden", "above bar", "in basement",
            "next to highway", "by the park"]
WORD_EFFECT = {"luxury": 2.2, "renovated": 1.5, "spacious": 0.8, "cozy": 0.6, "charming": 0.6,
               "bright": 0.5, "modern": 0.5, "compact": -0.6, "dated": -1.2, "noisy": -2.4,
               "villa": 0.9, "suite": 0.6, "room": -0.6, "beach": 2.0, "view": 1.2, "balcony": 0.8,
               "garden": 0.6, "town": 0.5, "bar": -1.5, "basement": -2.1, "highway": -1.6}

TRIP_TYPES = ["business", "couple", "family", "solo"]
TRIP_SCALE = 1.6
TRIP_WORDS = {"business": {"downtown", "station", "modern"}, "couple": {"luxury", "view", "suite", "beach"},
              "family": {"villa", "garden", "apartment", "spacious"}, "solo": {"room", "studio", "compact"}}
TAGS = ["beach", "nightlife", "parking", "quiet", "wifi"]
TAG_WORDS = {"beach": {"beach", "sea"}, "nightlife": {"bar", "downtown", "old"},
             "parking": {"parking", "highway", "villa", "cabin"}, "quiet": {"garden", "park", "cabin"}}
TAG_PROBABILITY = {"beach": (0.05, 0.85), "nightlife": (0.08, 0.75), "parking": (0.1, 0.8),
                   "quiet": (0.15, 0.7), "wifi": (0.3, 0.6)}  # (otherwise, when its words say so)
REVIEW_BASE, REVIEW_RATING_SLOPE, REVIEW_WORD_SCALE, REVIEW_NOISE = 6.5, 1.2, 0.5, 0.6
DEVICE_REVIEW = {"mobile": -0.3, "desktop": 0.2, "tablet": 0.0}
HOST_PHRASES = ["Self check-in.", "Fast wifi!", "Pets welcome.", "Quiet street.", "Great for families.",
                "Close to nightlife.", "Free parking on site.", "Recently renovated.", "Long stays welcome."]
NO_NOTE_SHARE = 0.1
FACILITIES = ["pool", "gym", "breakfast", "kitchen", "spa", "pets"]
FACILITY_TRIP = {"pool": ("family", 1.0), "kitchen": ("family", 0.6), "gym": ("business", 0.8),
                 "spa": ("couple", 0.8)}

_DATES = np.datetime64("2026-01-01") + np.arange(365)
_DATE_TEXT = np.datetime_as_string(_DATES).astype(object)
_DAY_OF_WEEK = (_DATES.astype(np.int64) + 3) % 7   # 1970-01-01 was a Thursday (index 3)
_SEASON = (_DATES.astype("datetime64[M]").astype(np.int64) % 12 + 1) % 12 // 3  # Dec-Feb -> 0


@dataclass(frozen=True)
class FixtureSummary:
    path: Path
    rows: int
    label_rate: float
    seconds: float


@dataclass(frozen=True)
class _Catalog:
    item_id: np.ndarray      # "item_00042"
    title: np.ndarray
    base_price: np.ndarray
    rating: np.ndarray       # NaN for a new listing
    distance_km: np.ndarray
    effect: np.ndarray
    popularity: np.ndarray   # sums to 1


@cache
def _catalog() -> _Catalog:
    rng = np.random.default_rng(CATALOG_SEED)
    rank = rng.permutation(N_ITEMS) + 1   # so item ids say nothing about popularity
    popularity = rank ** -ZIPF_EXPONENT
    adjectives = rng.choice(ADJECTIVES, size=(N_ITEMS, 2))
    places, features = rng.choice(PLACES, N_ITEMS), rng.choice(FEATURES, N_ITEMS)
    two_adjectives = (rng.random(N_ITEMS) < 0.4) & (adjectives[:, 0] != adjectives[:, 1])
    titles = [" ".join(a[: 1 + two] + [p, f]).capitalize()   # 5,000 joins, once per process
              for a, two, p, f in zip(adjectives.tolist(), two_adjectives, places, features)]
    rating = np.round(np.clip(rng.normal(4.1, 0.5, N_ITEMS), 1.0, 5.0), 1)
    rating[rng.random(N_ITEMS) < NEW_LISTING_SHARE] = np.nan
    return _Catalog(
        item_id=np.array([f"item_{i:05d}" for i in range(N_ITEMS)], dtype=object),
        title=np.array(titles, dtype=object),
        base_price=rng.lognormal(np.log(110), 0.5, N_ITEMS),
        rating=rating,
        distance_km=np.round(rng.exponential(3.0, N_ITEMS) + 0.1, 2),
        effect=rng.normal(0.0, ITEM_EFFECT_SD, N_ITEMS),
        popularity=popularity / popularity.sum())


def _per_distinct(values: pd.Series, score) -> np.ndarray:
    """score() each distinct value once (an unknown one scores None: NaN), then spread back."""
    codes, uniques = pd.factorize(values)
    return np.array([score(u) for u in uniques], dtype=float)[codes]


def booking_probability(frame: pd.DataFrame) -> np.ndarray:
    """The true P(booked) of each row, computed from the row's own columns (see the top)."""
    effects = _catalog().effect
    logit = (BASE_LOGIT
             + _per_distinct(frame["country"], COUNTRY_EFFECT.get)
             + _per_distinct(frame["device"], DEVICE_EFFECT.get)
             + _per_distinct(frame["season"], SEASON_EFFECT.get)
             + _per_distinct(frame["season"], PRICE_SLOPE.get) * np.log(frame["price"].to_numpy(float) / 100)
             + RATING_SLOPE * (frame["rating"].fillna(NEUTRAL_RATING).to_numpy(float) - NEUTRAL_RATING)
             + DISTANCE_SLOPE * frame["distance_km"].to_numpy(float)
             + MOBILE_WEEKEND * (frame["device"].eq("mobile") & frame["day_of_week"].isin(["sat", "sun"])).to_numpy()
             + _per_distinct(frame["title"], lambda t: sum(WORD_EFFECT.get(w, 0.0) for w in t.lower().split()))
             + _per_distinct(frame["item_id"], lambda item: effects[int(item.removeprefix("item_"))]))
    return 1.0 / (1.0 + np.exp(-logit))


def _chunk(seed: int, k: int, shift: bool = False) -> pd.DataFrame:
    """All CHUNK_ROWS rows of chunk k; draws are always full-size so truncation keeps prefixes."""
    rng, n, cat = np.random.default_rng([seed, k]), CHUNK_ROWS, _catalog()
    row_number = np.arange(k * n + 1, (k + 1) * n + 1).astype(np.dtypes.StringDType())
    day = rng.integers(0, len(_DATES), n)
    season = _SEASON[day]
    country = rng.choice(len(COUNTRIES), n, p=SHIFTED_COUNTRY_WEIGHTS if shift else COUNTRY_WEIGHTS)
    home = np.searchsorted(LANGUAGES, COUNTRY_LANGUAGE)[country]
    language = np.where(rng.random(n) < HOME_LANGUAGE_SHARE, home, rng.integers(0, len(LANGUAGES), n))
    item = rng.choice(N_ITEMS, n, p=cat.popularity)
    price = cat.base_price[item] * np.take(SEASON_PRICE_FACTOR, season) * rng.lognormal(0.0, 0.1, n)
    if shift:
        price = price * SHIFTED_PRICE_FACTOR
    columns = {
        "impression_id": np.strings.add("imp-", np.strings.zfill(row_number, 9)).astype(object),
        "event_date": _DATE_TEXT[day],
        "country": np.array(COUNTRIES, dtype=object)[country],
        "language": np.array(LANGUAGES, dtype=object)[language],
        "device": np.array(DEVICES, dtype=object)[rng.choice(len(DEVICES), n, p=DEVICE_WEIGHTS)],
        "day_of_week": np.array(DAYS, dtype=object)[_DAY_OF_WEEK[day]],
        "season": np.array(SEASONS, dtype=object)[season],
        "item_id": cat.item_id[item],
        "price": np.round(price, 2),
        "rating": cat.rating[item],
        "distance_km": cat.distance_km[item],
        "nights": np.minimum(rng.geometric(0.35, n), 14),
        "lead_time_days": np.minimum(rng.exponential(40.0, n).astype(np.int64), 365),
        "title": cat.title[item],
    }
    # dtype=v.dtype keeps strings as object: pandas' str dtype costs ~40% more to build and write.
    frame = pd.DataFrame({name: pd.Series(v, dtype=v.dtype, copy=False) for name, v in columns.items()})
    frame["booked"] = (rng.random(n) < booking_probability(frame)).astype(np.int64)
    _add_other_targets(frame, rng)
    return frame


@cache
def _host_notes() -> np.ndarray:
    """Each listing's host note (None for NO_NOTE_SHARE of them), from a stream of its own so that
    the catalogue's other columns keep their values."""
    rng = np.random.default_rng([CATALOG_SEED, 1])
    picks = rng.choice(len(HOST_PHRASES), size=(N_ITEMS, 2))
    notes = [" ".join(HOST_PHRASES[i] for i in dict.fromkeys(pair[: 1 + int(two)]))
             for pair, two in zip(picks.tolist(), rng.random(N_ITEMS) < 0.5)]
    return np.array([None if empty else note for note, empty in zip(notes, rng.random(N_ITEMS) < NO_NOTE_SHARE)],
                    dtype=object)


@cache
def _facilities() -> np.ndarray:
    """Each listing's facilities: a list of 0-3 FACILITIES, or None for some (drawn after the notes)."""
    rng = np.random.default_rng([CATALOG_SEED, 2])
    counts = rng.integers(0, 4, N_ITEMS)
    chosen = [sorted(rng.choice(len(FACILITIES), size=k, replace=False).tolist()) for k in counts]
    unknown = rng.random(N_ITEMS) < 0.05
    out = np.empty(N_ITEMS, dtype=object)
    out[:] = [None if missing else [FACILITIES[i] for i in picks] for picks, missing in zip(chosen, unknown)]
    return out


def _words(frame: pd.DataFrame, words: set[str]) -> np.ndarray:
    """1.0 where the row's title holds one of `words`."""
    return _per_distinct(frame["title"], lambda t: float(bool(words & set(t.lower().split()))))


def _add_other_targets(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    """trip_type, tags and review_score (see the top), from the row's columns and fresh draws."""
    n = len(frame)
    weekend = frame["day_of_week"].isin(["fri", "sat", "sun"]).to_numpy(float)
    nights = frame["nights"].to_numpy(float)
    device = frame["device"]
    logits = np.stack([
        1.0 * (1 - weekend) + device.eq("desktop").to_numpy(float) + (nights <= 2) + _words(frame, TRIP_WORDS["business"]),
        1.0 * weekend + 1.2 * _words(frame, TRIP_WORDS["couple"]),
        1.2 * (nights >= 4) + frame["season"].eq("summer").to_numpy(float) + _words(frame, TRIP_WORDS["family"]),
        1.2 * _words(frame, TRIP_WORDS["solo"]) + (frame["price"].to_numpy(float) < 80) + 0.3,
    ], axis=1) * TRIP_SCALE
    facilities = _facilities()[frame["item_id"].str.removeprefix("item_").astype(int).to_numpy()]
    for facility, (trip, effect) in FACILITY_TRIP.items():
        logits[:, TRIP_TYPES.index(trip)] += TRIP_SCALE * effect * np.array([facility in (f or []) for f in facilities])
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    drawn = (rng.random(n)[:, None] > np.cumsum(probabilities, axis=1)).sum(axis=1)
    frame["trip_type"] = np.array(TRIP_TYPES, dtype=object)[np.minimum(drawn, len(TRIP_TYPES) - 1)]

    said = {tag: _words(frame, words) for tag, words in TAG_WORDS.items()}
    said["wifi"] = device.eq("desktop").to_numpy(float)
    draws = rng.random((n, len(TAGS)))
    has = np.stack([draws[:, j] < np.where(said[tag] > 0, TAG_PROBABILITY[tag][1], TAG_PROBABILITY[tag][0])
                    for j, tag in enumerate(TAGS)], axis=1)
    frame["tags"] = pd.Series([[t for t, on in zip(TAGS, row) if on] for row in has.tolist()], dtype=object)

    frame["facilities"] = pd.Series(list(facilities), dtype=object)
    frame["host_note"] = _host_notes()[frame["item_id"].str.removeprefix("item_").astype(int).to_numpy()]

    word_effect = _per_distinct(frame["title"], lambda t: sum(WORD_EFFECT.get(w, 0.0) for w in t.lower().split()))
    score = (REVIEW_BASE + REVIEW_RATING_SLOPE * (frame["rating"].fillna(NEUTRAL_RATING).to_numpy(float) - 4.0)
             + REVIEW_WORD_SCALE * word_effect + _per_distinct(device, DEVICE_REVIEW.get)
             + rng.normal(0.0, REVIEW_NOISE, n))
    frame["review_score"] = np.round(np.clip(score, 1.0, 10.0), 1)


def generate_chunks(rows: int, seed: int, shift: bool = False) -> Iterator[pd.DataFrame]:
    """Yield `rows` rows as DataFrames of CHUNK_ROWS rows (the last one shorter); shift: see the top."""
    if rows < 1:
        raise DataError(f"rows must be at least 1, got {rows}: a dataset needs at least one row")
    return (_chunk(seed, k, shift).iloc[: rows - k * CHUNK_ROWS] for k in range(-(-rows // CHUNK_ROWS)))


def write_fixture(path, rows: int, seed: int = DEFAULT_SEED, progress: bool = False,
                  shift: bool = False) -> FixtureSummary:
    """Write `rows` rows as JSON lines to `path` (gzip if it ends with .gz), atomically; shift: see the top."""
    path = Path(path)
    chunks = generate_chunks(rows, seed, shift)   # checks `rows` before any file is touched
    path.parent.mkdir(parents=True, exist_ok=True)
    start, done, booked = time.perf_counter(), 0, 0
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        # mtime=0 and no file name in the header: the same rows give the same .gz bytes.
        out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0) \
            if path.name.endswith(".gz") else nullcontext(raw)
        with out as sink:
            for chunk in chunks:
                for start_row in range(0, len(chunk), JSON_SLICE_ROWS):
                    piece = chunk.iloc[start_row:start_row + JSON_SLICE_ROWS]
                    sink.write(piece.to_json(orient="records", lines=True).encode())
                done, booked = done + len(chunk), booked + int(chunk["booked"].sum())
                if progress:
                    rate = done / (time.perf_counter() - start)
                    print(f"{path.name}: {done:,}/{rows:,} rows, {rate:,.0f} rows/s", file=sys.stderr)
    return FixtureSummary(path, done, booked / done, time.perf_counter() - start)


if __name__ == "__main__":
    print(write_fixture(FIXTURE_PATH, FIXTURE_ROWS))
