"""A sample warehouse of raw tables, cut from the fixture generator's rows, for the duckdb engine.

    fab warehouse --rows=20000                     # -> data/warehouse/ (the default NET_WAREHOUSE)
    from data.warehouse import write_warehouse; write_warehouse("/tmp/wh", rows=1_000_000)

A warehouse is a folder of tables named as the queries name them, `<dataset>.<table>.parquet`
(or .ndjson/.json/.jsonl, optionally .gz, or a folder `<dataset>.<table>/` of Parquet shards).
The sample one holds four tables:

    travel.users        user_id INT64, country, language, signup_date DATE
    travel.listings     item_id, title, rating FLOAT64 (null for a new listing), distance_km
    travel.impressions  impression_id, user_id, item_id, event_ts TIMESTAMP, device, price,
                        nights INT64, lead_time_days INT64
    travel.bookings     booking_id INT64, impression_id, status ('confirmed' | 'cancelled'), booked_at

Every impression of the fixture generator becomes one `impressions` row whose user has the
row's country and language, and a `confirmed` booking when the row was booked (a few unbooked
impressions get a `cancelled` one, which the query must ignore). data/queries/training_rows.sql
joins the tables back into exactly the generator's rows, so the planted signal survives.
"""
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data import fixture
from netfab.storage import atomic_path

DATASET = "travel"
TABLES = ("users", "listings", "impressions", "bookings")
USERS_PER_PAIR = 400         # users per (country, language): 12 x 8 x 400 = 38,400 users
CANCELLED_SHARE = 0.05       # unbooked impressions that still got a (cancelled) booking
SIGNUP_DAYS = 3 * 365        # users signed up within three years before 2026


@dataclass(frozen=True)
class WarehouseSummary:
    path: Path
    rows: dict[str, int]  # table -> rows
    seconds: float


def table_path(folder: Path, table: str) -> Path:
    return Path(folder) / f"{DATASET}.{table}.parquet"


def _users() -> pd.DataFrame:
    """Every (country, language) pair x USERS_PER_PAIR users; user_id encodes the pair."""
    rng = np.random.default_rng(fixture.CATALOG_SEED)
    pairs = [(c, lang) for c in fixture.COUNTRIES for lang in fixture.LANGUAGES]
    pair = np.repeat(np.arange(len(pairs)), USERS_PER_PAIR)
    return pd.DataFrame({
        "user_id": np.arange(len(pair), dtype=np.int64),
        "country": np.array([p[0] for p in pairs], dtype=object)[pair],
        "language": np.array([p[1] for p in pairs], dtype=object)[pair],
        "signup_date": (np.datetime64("2023-01-01") + rng.integers(0, SIGNUP_DAYS, len(pair))
                        ).astype("datetime64[s]").astype("datetime64[D]"),
    })


def _listings() -> pd.DataFrame:
    catalog = fixture._catalog()
    return pd.DataFrame({"item_id": catalog.item_id, "title": catalog.title,
                         "rating": catalog.rating, "distance_km": catalog.distance_km})


def _split(rows: pd.DataFrame, k: int, booking_offset: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One generator chunk -> (impressions, bookings), drawn from a seed of its own."""
    rng = np.random.default_rng([fixture.CATALOG_SEED, k])
    n = len(rows)
    country = pd.Categorical(rows["country"], categories=fixture.COUNTRIES).codes
    language = pd.Categorical(rows["language"], categories=fixture.LANGUAGES).codes
    pair = country.astype(np.int64) * len(fixture.LANGUAGES) + language
    user_id = pair * USERS_PER_PAIR + rng.integers(0, USERS_PER_PAIR, n)
    seconds = rng.integers(0, 86_400, n).astype("timedelta64[s]")
    event_ts = rows["event_date"].to_numpy().astype("datetime64[D]").astype("datetime64[s]") + seconds
    impressions = pd.DataFrame({
        "impression_id": rows["impression_id"].to_numpy(), "user_id": user_id,
        "item_id": rows["item_id"].to_numpy(), "event_ts": event_ts,
        "device": rows["device"].to_numpy(), "price": rows["price"].to_numpy(),
        "nights": rows["nights"].to_numpy(np.int64),
        "lead_time_days": rows["lead_time_days"].to_numpy(np.int64)})
    booked = rows["booked"].to_numpy() == 1
    cancelled = ~booked & (rng.random(n) < CANCELLED_SHARE)
    has_booking = booked | cancelled
    count = int(has_booking.sum())
    bookings = pd.DataFrame({
        "booking_id": np.arange(booking_offset, booking_offset + count, dtype=np.int64),
        "impression_id": impressions["impression_id"].to_numpy()[has_booking],
        "status": np.where(booked[has_booking], "confirmed", "cancelled").astype(object),
        "booked_at": event_ts[has_booking] + rng.integers(60, 3_600, count).astype("timedelta64[s]"),
    })
    return impressions, bookings


def write_warehouse(folder, rows: int = 20_000, seed: int = fixture.DEFAULT_SEED) -> WarehouseSummary:
    """Write the four tables for `rows` impressions (the fixture's first `rows` rows) into `folder`."""
    folder = Path(folder)
    chunks = fixture.generate_chunks(rows, seed)  # checks `rows` before anything is written
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, frame in (("users", _users()), ("listings", _listings())):
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), table_path(folder, name))
        counts[name] = len(frame)
    counts["impressions"], counts["bookings"] = 0, 0
    # Each streamed table goes to a temporary that becomes the table only if every chunk was
    # written; the stack closes a writer before its file is renamed (or removed on an error).
    with contextlib.ExitStack() as stack:
        writers = {}
        for k, chunk in enumerate(chunks):
            impressions, bookings = _split(chunk, k, counts["bookings"])
            for name, frame in (("impressions", impressions), ("bookings", bookings)):
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if name not in writers:
                    partial = stack.enter_context(atomic_path(table_path(folder, name)))
                    writers[name] = stack.enter_context(pq.ParquetWriter(partial, table.schema))
                writers[name].write_table(table)
                counts[name] += len(frame)
    return WarehouseSummary(folder, counts, time.perf_counter() - started)


