"""Load newline-delimited JSON shards into one pandas DataFrame through pyarrow, checked against the config.

    from data.loading import load_rows
    loaded = load_rows([Path("data/fixtures/sanity_2k.json")], config)
    loaded.frame, loaded.rows_read, loaded.nulls

pyarrow parses each shard in C; only when it refuses a shard, or a column has the wrong type,
do we scan that shard line by line in Python to name the exact file, line and column.

Null policy: a null categorical or text value becomes "" (the out-of-vocabulary bucket, or
an empty title); a null numeric is filled later with the training split's mean
(data/preparation.py); a null label is an error. Columns the config does not use are dropped.
"""
import dataclasses
import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.types as pat

from netfab.errors import DataError


@dataclasses.dataclass
class LoadedRows:
    frame: pd.DataFrame  # the config's columns only, all shards concatenated
    rows_read: int  # before sampling
    nulls: dict[str, int]  # column -> null values seen (before the null policy)


def column_roles(config) -> dict[str, str]:
    """Each column the config reads -> the config key that names it."""
    roles = {column: "categorical_columns" for column in config.categorical_columns}
    roles.update({column: "numeric_columns" for column in config.numeric_columns})
    if config.text_column:
        roles[config.text_column] = "text_column"
    roles[config.label_column] = "label_column"
    return roles


def load_rows(files: list[Path], config) -> LoadedRows:
    """All rows of `files` (or a uniform sample of `config.sample_rows`), validated."""
    roles = column_roles(config)
    rng = np.random.default_rng(config.seed)
    kept, keys, rows_read = [], [], 0
    nulls = dict.fromkeys(roles, 0)
    for path in files:
        table = _read_shard(path, config, roles)
        if table is None:  # an empty shard, as exports sometimes write
            continue
        rows_read += table.num_rows
        for column in roles:
            nulls[column] += table[column].null_count
        if config.sample_rows:
            # Bottom-k sampling: a random key per row, keep the k smallest across shards, so
            # memory holds one shard plus the sample however large the dataset is.
            kept.append(table)
            keys.append(rng.random(table.num_rows))
            table, key = pa.concat_tables(kept), np.concatenate(keys)
            if table.num_rows > config.sample_rows:
                best = np.sort(np.argpartition(key, config.sample_rows)[:config.sample_rows])
                table, key = table.take(best), key[best]
            kept, keys = [table], [key]
        else:
            kept.append(table)
    if rows_read == 0:
        raise DataError(f"the dataset has no rows: {len(files)} empty file(s), e.g. {files[0]}")
    frame = pa.concat_tables(kept).to_pandas()
    for column, role in roles.items():
        if role in ("categorical_columns", "text_column"):
            frame[column] = frame[column].fillna("").astype(object)
        elif role == "numeric_columns":
            frame[column] = frame[column].astype("float64")
    frame[config.label_column] = frame[config.label_column].astype("float32")
    if config.id_column in frame:
        frame[config.id_column] = frame[config.id_column].astype(str)
    return LoadedRows(frame, rows_read, nulls)


def _read_shard(path: Path, config, roles: dict[str, str]) -> pa.Table | None:
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            table = pa_json.read_json(stream)
    except pa.ArrowInvalid as error:
        if "Empty JSON file" in str(error):
            return None
        raise DataError(_first_bad_line(path, roles) or f"{path}: cannot parse as "
                        f"newline-delimited JSON: {error}") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error}") from None

    for column, role in roles.items():
        if column not in table.column_names:
            raise DataError(f"{path} has no column {column!r} (named by {role} in the config); "
                            f"its columns are: {', '.join(table.column_names)}")
    wanted = [c for c in roles] + ([config.id_column] if config.id_column in table.column_names else [])
    table = table.select(wanted)
    for column, role in roles.items():
        if not _type_fits(table[column].type, role):
            raise DataError(_first_bad_line(path, roles) or
                            f"{path}: column {column!r} has type {table[column].type}; "
                            f"{_EXPECTED[role]}")
    label = table[config.label_column]
    if label.null_count or not np.isin(label.to_numpy(zero_copy_only=False), (0, 1)).all():
        raise DataError(_first_bad_line(path, roles) or f"{path}: {_EXPECTED['label_column']}")
    return table


_EXPECTED = {
    "categorical_columns": "categorical columns hold strings (cast ids in the query, e.g. "
                           "CAST(item_id AS STRING)) or null",
    "numeric_columns": "numeric columns hold numbers or null",
    "text_column": "the text column holds strings or null",
    "label_column": "the label holds 0 or 1 (no nulls)",
}


def _type_fits(kind: pa.DataType, role: str) -> bool:
    if pat.is_null(kind):  # every value null: the null policy applies
        return role != "label_column"
    if role in ("categorical_columns", "text_column"):
        return pat.is_string(kind) or pat.is_large_string(kind)
    if role == "numeric_columns":
        return pat.is_integer(kind) or pat.is_floating(kind)
    return pat.is_integer(kind) or pat.is_boolean(kind) or pat.is_floating(kind)


def _value_fits(value, role: str) -> bool:
    if role == "label_column":
        return value in (0, 1) and not isinstance(value, str)
    if value is None:
        return True
    if role == "numeric_columns":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def open_text(path: Path):
    """A shard's lines as text, gunzipped when its name ends in .gz."""
    opener = gzip.open if Path(path).name.endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8", errors="replace")


def first_rows(path: Path, count: int) -> list[dict]:
    """The first `count` rows of a shard, parsed (blank lines skipped)."""
    with open_text(path) as lines:
        return [json.loads(line) for line in itertools.islice(filter(str.strip, lines), count)]


def _first_bad_line(path: Path, roles: dict[str, str]) -> str | None:
    """The first problem in `path`, as 'file:line: what is wrong; what is expected', or None."""
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                return f"{path}:{number}: malformed JSON ({error.msg} at column {error.colno})"
            if not isinstance(row, dict):
                return f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}"
            for column, role in roles.items():
                value = row.get(column)
                if not _value_fits(value, role):
                    shown = json.dumps(value)[:60]
                    return (f"{path}:{number}: column {column!r} ({role}) holds {shown}; "
                            f"{_EXPECTED[role]}")
    return None
