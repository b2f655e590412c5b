"""Read newline-delimited JSON shards into compact columns, checked against the config.

    from data.loading import load_rows
    loaded = load_rows([Path("data/fixtures/sanity_2k.json")], config)
    loaded.strings["country"].codes, loaded.numbers["price"], loaded.label, loaded.rows_read

pyarrow parses each shard in C, a block at a time (a 4 GB file never sits in memory whole), and
every block is turned into compact arrays at once: a string column becomes int32 codes into its
distinct values (one Python string per distinct value, none per row), a number float32. So the
memory of a loaded dataset is a few bytes per row and column, whatever its strings. Only when
pyarrow refuses a block do we scan that shard line by line in Python to name the exact file,
line and column.

Null policy (one rule, applied here and by the model's front end): a null categorical or text
value is "" (the out-of-vocabulary bucket, or an empty title); a null number is NaN here and
becomes the training mean in the front end (data/preparation.py, models/frontend.py); a null
label is an error. Columns the config does not use are never materialised.
"""
import dataclasses
import gzip
import itertools
import json
import logging
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from netfab.config import column_roles
from netfab.errors import DataError
from netfab.tasks import TASKS

log = logging.getLogger(__name__)
BLOCK_BYTES = 16 << 20  # pyarrow parses this much at a time: memory per block, not per file
BLOCK_ROWS = 1 << 17  # Parquet: rows per batch read
PROGRESS_SECONDS = 5.0  # a loading line at most this often


@dataclasses.dataclass
class EncodedStrings:
    """A string column as int32 codes into its distinct values; code 0 is "" (also null)."""

    codes: np.ndarray  # int32, one per row
    values: list[str]  # distinct values, values[0] == ""

    def __len__(self) -> int:
        return len(self.codes)


@dataclasses.dataclass
class LoadedRows:
    strings: dict[str, EncodedStrings]  # categorical and text columns
    numbers: dict[str, np.ndarray]  # float32, NaN where the value was null (numerics and the weight)
    label: np.ndarray | EncodedStrings  # float32 (binary: 0 or 1, regression); the class, or the
    # tags joined by LIST_SEPARATOR, as strings (multiclass, multilabel)
    rows_read: int  # before sampling
    nulls: dict[str, int]  # column -> null values seen (before the null policy)

    @property
    def rows(self) -> int:
        return len(self.label)

    def take(self, index: np.ndarray) -> "LoadedRows":
        """These rows only (codes keep their distinct values)."""
        return dataclasses.replace(
            self, strings={c: EncodedStrings(s.codes[index], s.values) for c, s in self.strings.items()},
            numbers={c: v[index] for c, v in self.numbers.items()},
            label=EncodedStrings(self.label.codes[index], self.label.values)
            if isinstance(self.label, EncodedStrings) else self.label[index])


class _StringCodes:
    """Distinct values of one column across every block, and each block's codes into them."""

    def __init__(self):
        self.index = {"": 0}
        self.values = [""]

    def encode(self, column: pa.Array) -> np.ndarray:
        encoded = pc.dictionary_encode(column)
        distinct = encoded.dictionary.to_pylist()  # a Python string per distinct value of the block
        remap = np.empty(len(distinct) + 1, np.int32)
        for i, value in enumerate(distinct):
            if value not in self.index:
                self.index[value] = len(self.values)
                self.values.append(value)
            remap[i] = self.index[value]
        remap[-1] = 0  # null -> ""
        indices = pc.fill_null(encoded.indices, len(distinct)).to_numpy()
        return remap[indices]


def load_rows(files: list[Path], config, labelled: bool = True) -> LoadedRows:
    """All rows of `files` (or a uniform sample of `config.sample_rows`), validated and encoded.

    labelled=False: the label is not read (rows to score or to compare, e.g. logged requests); `label` is NaN.
    """
    roles = column_roles(config)
    if not labelled:
        del roles[config.label_column]
    strings = {c: _StringCodes() for c, r in roles.items()
               if r in ("categorical_columns", "list_columns", "text_columns", "split_column")}
    numeric = [c for c, r in roles.items() if r in ("numeric_columns", "weight_column")]
    label_codes = _StringCodes() if labelled and TASKS[config.task].per_class else None
    sample = _BottomK(config.sample_rows, config.seed) if config.sample_rows else None
    parts: list[dict[str, np.ndarray]] = []
    nulls = dict.fromkeys(roles, 0)
    rows_read, started, last_line = 0, time.monotonic(), time.monotonic()
    for number, path in enumerate(files, start=1):
        for batch in _read_blocks(path, config, roles):
            rows_read += batch.num_rows
            for column in roles:
                nulls[column] += batch.column(column).null_count
            part = {c: codes.encode(_strings(batch.column(c), c, roles, path)) for c, codes in strings.items()}
            for column in numeric:
                part[column] = pc.fill_null(pc.cast(batch.column(column), pa.float32()),
                                            float("nan")).to_numpy(zero_copy_only=False)
            part[config.label_column] = (_label(batch.column(config.label_column), path, roles, config.task,
                                                label_codes) if labelled
                                         else np.full(batch.num_rows, np.nan, np.float32))
            if sample:
                parts = sample.add(parts, part)
            else:
                parts.append(part)
            if time.monotonic() - last_line >= PROGRESS_SECONDS:
                last_line = time.monotonic()
                log.info("loading: %s rows from %d of %d file(s), %s rows/s", f"{rows_read:,}", number,
                         len(files), f"{rows_read / (last_line - started):,.0f}")
    if rows_read == 0:
        raise DataError(f"the dataset has no rows: {len(files)} empty file(s), e.g. {files[0]}")
    columns = {c: np.concatenate([p.pop(c) for p in parts]) for c in list(parts[0])}
    pa.default_memory_pool().release_unused()  # the parsed blocks' memory back to the system
    seconds = time.monotonic() - started
    log.info("loaded %s rows from %d file(s) in %.1f s (%s rows/s)", f"{rows_read:,}", len(files),
             seconds, f"{rows_read / max(seconds, 1e-9):,.0f}")
    label = columns.pop(config.label_column)
    return LoadedRows(strings={c: EncodedStrings(columns.pop(c), codes.values) for c, codes in strings.items()},
                      numbers={c: columns.pop(c) for c in numeric},
                      label=EncodedStrings(label, label_codes.values) if label_codes else label,
                      rows_read=rows_read, nulls=nulls)


class _BottomK:
    """A seeded uniform sample of k rows across blocks: a random key per row, the k smallest kept,
    so memory holds the sample plus a block however large the dataset is."""

    def __init__(self, k: int, seed: int):
        self.k, self.rng = k, np.random.default_rng(seed)

    def add(self, parts: list[dict], part: dict) -> list[dict]:
        part["_key"] = self.rng.random(len(next(iter(part.values()))))
        merged = {c: np.concatenate([p[c] for p in parts] + [part[c]]) for c in part}
        if len(merged["_key"]) > self.k:
            keep = np.sort(np.argpartition(merged["_key"], self.k)[:self.k])
            merged = {c: v[keep] for c, v in merged.items()}
        return [merged]


def _check_columns(path: Path, present: list[str], config, roles: dict[str, str]) -> None:
    """DataError naming every column the config reads (and its id column) that `path` lacks."""
    # The id column is never read for training, but a model whose id fab predict cannot find
    # later is found out now, not after the training run.
    named = {**roles, **({config.id_column: "id_column"} if config.id_column else {})}
    missing = [c for c in named if c not in present]
    if missing:
        hint = ("; set id_column = \"\" when the data has none (fab predict then writes the row number)"
                if named[missing[0]] == "id_column" else "")
        raise DataError(f"{path} has no column(s) {', '.join(f'{c!r} ({named[c]})' for c in missing)} "
                        f"named in the config{hint}; its columns are: {', '.join(present)}")


def _read_blocks(path: Path, config, roles: dict[str, str]):
    """The config's columns of one shard, a block at a time, typed; DataError naming a bad line."""
    name = Path(path).name
    if name.endswith(".parquet"):
        yield from _parquet_blocks(path, config, roles)
        return
    if name.endswith((".csv", ".csv.gz")):
        yield from _csv_blocks(path, config, roles)
        return
    try:
        first = first_rows(path, 1)
    except json.JSONDecodeError:
        first = [None]  # named line by line below
    if not first:
        return  # an empty shard, as exports sometimes write
    if not isinstance(first[0], dict):
        raise DataError(_first_bad_line(path, roles, config.task) or f"{path}: expected a JSON object per line")
    _check_columns(path, list(first[0]), config, roles)
    label = [(config.label_column, _label_type(first[0][config.label_column], config.task))
             ] if config.label_column in roles else []  # unlabelled rows: no label read
    schema = pa.schema([(c, _column_type(first[0][c], r)) for c, r in roles.items() if r != "label_column"] + label)
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            reader = pa_json.open_json(stream, read_options=pa_json.ReadOptions(block_size=BLOCK_BYTES),
                                       parse_options=options)
            for batch in reader:
                yield batch
    except pa.ArrowInvalid as error:
        raise DataError(_first_bad_line(path, roles, config.task) or f"{path}: cannot parse as "
                        f"newline-delimited JSON: {error}") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error}") from None


def read_table(path: Path) -> pa.Table:
    """A whole data file (NDJSON, CSV or Parquet, by its name), every column typed as pyarrow infers
    it: for fab predict, which reads the columns a model takes, not a config's."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    name = Path(path).name
    if name.endswith(".parquet"):
        return pq.read_table(path)
    with pa.input_stream(str(path), compression="detect") as stream:
        if name.endswith((".csv", ".csv.gz")):
            return pa_csv.read_csv(stream)
        return pa_json.read_json(stream)


def _parquet_blocks(path: Path, config, roles: dict[str, str]):
    """A Parquet file's config columns, a row group's batch at a time; every column of a type the
    config cannot read is named in one message (Parquet columns are typed: no line to scan)."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{path}: cannot read as Parquet: {error}") from None
    schema = parquet.schema_arrow
    _check_columns(path, schema.names, config, roles)
    bad = [f"column {c!r} ({r}) is {schema.field(c).type}; {_expected(r, config.task)}"
           for c, r in roles.items() if not _arrow_type_fits(schema.field(c).type, r, config.task)]
    if bad:
        raise DataError(f"{path}: " + " | ".join(bad))
    yield from parquet.iter_batches(batch_size=BLOCK_ROWS, columns=list(roles))


def _arrow_type_fits(kind: pa.DataType, role: str, task: str) -> bool:
    """Whether a typed (Parquet) column of `kind` can be read in `role` (the loader casts it after)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
    if role in ("numeric_columns", "weight_column"):
        return numeric
    if role == "text_columns":
        return text
    category = text or pa.types.is_integer(kind) or pa.types.is_boolean(kind)
    if role == "split_column":
        return text or numeric or pa.types.is_timestamp(kind) or pa.types.is_date(kind)
    if role == "list_columns":
        return pa.types.is_null(kind) or ((pa.types.is_list(kind) or pa.types.is_large_list(kind))
                                          and _arrow_type_fits(kind.value_type, "categorical_columns", task))
    if role == "categorical_columns" or (role == "label_column" and task == "multiclass"):
        return category
    if task == "multilabel":
        return pa.types.is_null(kind) or ((pa.types.is_list(kind) or pa.types.is_large_list(kind))
                                          and _arrow_type_fits(kind.value_type, role, "multiclass"))
    return numeric or (task == "binary" and pa.types.is_boolean(kind))


def _csv_blocks(path: Path, config, roles: dict[str, str]):
    """A CSV file's config columns (a header row first), a block at a time. Categoricals and the
    class of a multiclass label are read as the text written ("3" is the category 3's string form);
    an empty field is null. A mistyped value is named with its line, for every column at once."""
    import pyarrow.csv as pa_csv

    if config.task == "multilabel" or config.list_columns:
        raise DataError(f"{path}: a CSV file cannot hold a list per row (task = multilabel, list_columns); "
                        f"write the dataset as NDJSON or Parquet")
    types = {c: pa.string() if r in ("categorical_columns", "text_columns", "split_column") else pa.float64()
             for c, r in roles.items() if r != "label_column"}
    if config.label_column in roles:  # not when reading unlabelled rows
        types[config.label_column] = pa.string() if config.task == "multiclass" else pa.float64()
    convert = pa_csv.ConvertOptions(column_types=types, include_columns=list(roles),
                                    strings_can_be_null=True, quoted_strings_can_be_null=False)
    import csv

    with open_text(path) as lines:
        header = next(csv.reader(lines), None)
    if header is None:
        return  # an empty shard
    _check_columns(path, header, config, roles)
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            reader = pa_csv.open_csv(stream, read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES),
                                     convert_options=convert)
            for batch in reader:
                yield batch
    except pa.ArrowInvalid as error:
        raise DataError(_csv_bad_values(path, types, roles, config.task) or
                        f"{path}: cannot parse as CSV: {error}") from None


def _csv_bad_values(path: Path, types: dict, roles: dict[str, str], task: str) -> str | None:
    """The first value that is not a number in each number column of a CSV file, in one message."""
    import pyarrow.csv as pa_csv

    table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
        column_types={c: pa.string() for c in types}, include_columns=list(types), strings_can_be_null=True))
    problems = []
    for column, kind in types.items():
        if kind != pa.float64():
            continue
        for row, value in enumerate(table[column].to_pylist()):
            try:
                float(value) if value is not None else None
            except ValueError:
                problems.append(f"{path}:{row + 2}: column {column!r} ({roles[column]}) holds "
                                f"{json.dumps(value)[:60]}; {_expected(roles[column], task)}")
                break
    if len(problems) > 1:
        return f"{len(problems)} columns hold values of the wrong type: " + " | ".join(problems)
    return problems[0] if problems else None


def _strings(column: pa.Array, name: str, roles: dict[str, str], path: Path) -> pa.Array:
    try:
        return category_strings(column)
    except DataError as error:
        raise DataError(f"{path}: column {name!r} ({roles[name]}): {error}") from None


def category_string(value) -> str:
    """A categorical value as its vocabulary holds it: a string as it is, an integer in decimal, a
    boolean as JSON writes it ("true"), null as "", a list (list_columns) as its items so written,
    joined by LIST_SEPARATOR. The one rule for training and serving."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # a list column's items, joined
        return LIST_SEPARATOR.join(map(category_string, value))
    return str(value)


def category_strings(column: pa.Array) -> pa.Array:
    """A categorical Arrow column of strings, integers or booleans as strings, by category_string's
    rule (a list column's items joined; null or [] -> null, "" once encoded)."""
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        items = pc.list_flatten(column)
        if items.null_count:
            raise DataError("a list column holds a null item; null or [] stands for no item, never an item")
        if not pa.types.is_string(items.type):
            column = pc.cast(column, pa.list_(pa.string()))
        return pc.binary_join(column, LIST_SEPARATOR)
    if pa.types.is_boolean(column.type):
        return pc.if_else(column, "true", "false")
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def _column_type(first_value, role: str) -> pa.DataType:
    """A feature column's Arrow type; a categorical's from its first row (pyarrow's JSON reader
    types a column up front and will not read an integer into a string column)."""
    if role == "categorical_columns" and isinstance(first_value, bool):
        return pa.bool_()
    if role in ("categorical_columns", "split_column") and isinstance(first_value, int):
        return pa.int64()
    if role == "split_column" and isinstance(first_value, float):
        return pa.float64()
    if role == "list_columns":
        items = [v for v in first_value if v is not None] if isinstance(first_value, list) else []
        return pa.list_(pa.int64() if items and type(items[0]) is int else pa.string())
    return _ARROW_TYPES[role]


LIST_SEPARATOR = "\x1f"  # joins a list's items (a list column's, a multilabel row's tags) into one
# string (ASCII unit separator): the form the front end and the served signature take


def _label_type(first_value, task: str) -> pa.DataType:
    """The label's Arrow type, read from the first row: pyarrow's JSON reader types a column up
    front and will not read an integer class into a string column."""
    if task == "multilabel":
        items = [v for v in first_value or [] if v is not None] if isinstance(first_value, list) else []
        return pa.list_(_label_type(items[0], "multiclass") if items else pa.string())
    if task == "multiclass":
        return (pa.bool_() if isinstance(first_value, bool) else pa.int64() if isinstance(first_value, int)
                else pa.float64() if isinstance(first_value, float) else pa.string())
    return pa.bool_() if task == "binary" and isinstance(first_value, bool) else pa.float64()


def _label(column: pa.Array, path: Path, roles: dict[str, str], task: str,
           codes: "_StringCodes | None") -> np.ndarray:
    """The label of one block: float32 (binary, regression) or codes into its strings (per class)."""
    if task == "multilabel":
        tags = pc.cast(column, pa.list_(pa.string()))
        if pc.any(pc.is_null(pc.list_flatten(tags))).as_py():  # a null inside a list: no tag to learn
            raise DataError(_first_bad_line(path, roles, task) or f"{path}: {_expected('label_column', task)}")
        return codes.encode(pc.binary_join(tags, LIST_SEPARATOR))  # null or [] -> "": no tag
    if task == "multiclass":
        if column.null_count or pc.any(pc.equal(pc.cast(column, pa.string()), "")).as_py():
            raise DataError(_first_bad_line(path, roles, task) or f"{path}: {_expected('label_column', task)}")
        return codes.encode(category_strings(column))  # a boolean as JSON writes it, not Arrow's "True"
    values = pc.cast(column, pa.float32())
    if values.null_count or (task == "binary" and not pc.all(
            pc.is_in(values, pa.array([0.0, 1.0], pa.float32()))).as_py()):
        raise DataError(_first_bad_line(path, roles, task) or f"{path}: {_expected('label_column', task)}")
    return values.to_numpy(zero_copy_only=False)


_ARROW_TYPES = {"list_columns": pa.list_(pa.string()), "categorical_columns": pa.string(), "text_columns": pa.string(),
                "numeric_columns": pa.float64(), "weight_column": pa.float64(), "split_column": pa.string()}
_EXPECTED = {
    "categorical_columns": "categorical columns hold strings, integers or booleans, one kind per "
                           "column (the kind of its first row), or null",
    "numeric_columns": "numeric columns hold numbers or null",
    "weight_column": "the weight column holds a number >= 0 in every row (no nulls)",
    "list_columns": "list columns hold a list of strings or integers (one kind per column), [] or null",
    "split_column": "the split column holds a time (ISO text or a number) or a group name in every row, "
                    "one kind per column",
    "text_columns": "text columns hold strings or null",
}
_LABEL_EXPECTED = {
    "binary": "the label holds 0 or 1 (no nulls) with task = binary",
    "multiclass": "the label holds one class per row, a string, integer or boolean (no nulls, no \"\") "
                  "with task = multiclass",
    "multilabel": "the label holds a list of tags per row, strings (null or [] for none) with "
                  "task = multilabel",
    "regression": "the label holds a number (no nulls) with task = regression",
}


def _expected(role: str, task: str) -> str:
    return _LABEL_EXPECTED[task] if role == "label_column" else _EXPECTED[role]


def _class_fits(value) -> bool:
    return isinstance(value, (str, int, bool)) and value != ""


def _value_fits(value, role: str, task: str = "binary", kind: type = str) -> bool:
    """Whether `value` fits its column; kind: a categorical column's JSON kind (its first row's)."""
    if role == "label_column":
        if task == "binary":
            return value in (0, 1) and not isinstance(value, str)
        if task == "regression":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if task == "multiclass":
            return _class_fits(value)
        return value is None or (isinstance(value, list) and all(map(_class_fits, value)))
    if value is None:
        return True
    if role == "numeric_columns":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if role == "list_columns":
        return value is None or (isinstance(value, list) and all(type(v) in (str, int) for v in value)
                                 and len({type(v) for v in value}) <= 1)
    if role == "weight_column":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    if role == "categorical_columns":
        return type(value) is kind
    if role == "split_column":
        return value is not None and (type(value) is kind or (kind is float and type(value) is int))
    return isinstance(value, str)


def open_text(path: Path):
    """A shard's lines as text, gunzipped when its name ends in .gz."""
    opener = gzip.open if Path(path).name.endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8", errors="replace")


def first_rows(path: Path, count: int) -> list:
    """The first `count` rows of a shard, parsed (blank lines skipped)."""
    with open_text(path) as lines:
        return [json.loads(line) for line in itertools.islice(filter(str.strip, lines), count)]


def _first_bad_line(path: Path, roles: dict[str, str], task: str = "binary") -> str | None:
    """What is wrong in `path`, as 'file:line: what is wrong; what is expected', or None: the first
    malformed line, or else the first bad value of EVERY column that holds one (one message, so a
    file with several mistyped columns is fixed in one go)."""
    problems: dict[str, str] = {}
    kinds: dict[str, type] | None = None
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
            if kinds is None:  # a categorical column's kind is its first row's
                kinds = {c: type(row.get(c)) if type(row.get(c)) in (int, bool) else
                         float if roles[c] == "split_column" and type(row.get(c)) is float else str for c in roles}
            for column, role in roles.items():
                if column in problems:
                    continue
                value = row.get(column)
                if not _value_fits(value, role, task, kinds[column]):
                    shown = json.dumps(value)[:60]
                    expected = _expected(role, task)
                    if role == "categorical_columns" and kinds[column] is not str:
                        expected += f"; this one holds {kinds[column].__name__}s from its first row"
                    problems[column] = (f"{path}:{number}: column {column!r} ({role}) holds {shown}; "
                                        f"{expected}")
    if len(problems) > 1:
        return f"{len(problems)} columns hold values of the wrong type: " + " | ".join(problems.values())
    return next(iter(problems.values()), None)
