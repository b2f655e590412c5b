"""`fab predict`: offline scoring of rows (NDJSON, CSV or Parquet) with a model zip, written next to their id column.

    from netfab.serve.batch_prediction import predict_file
    summary = predict_file("artifacts/deep_v1/<run>/model.zip", "rows/part-*.json.gz", "scores.csv")

Input: one data file (NDJSON, CSV, Parquet), a folder of shards or a glob (netfab.storage.dataset_files), parsed by
pyarrow in C into columns and cut into batches of tensors before scoring starts. Output:
`<id column>,probability` per row in input order (`row`, the row number from 0, when the model has
no id column and none is asked for; `value` for a regression model; `probability_<class>` per
class and the likeliest `class` for a multiclass model, `probability_<tag>` per tag for a
multilabel one), as CSV, or NDJSON when the output name ends in .json/.jsonl/.ndjson; written to a temporary file and published whole
(netfab.storage.publish_file), so a failed run leaves no partial output.

Speed: rows are scored in large batches (each model call has a fixed cost, which big batches
amortise) by two threads at once, because TensorFlow releases the GIL and one call alone does
not keep both cores busy (much of the model is string ops, which run on one thread).
benchmarks/serve.py measures items/s.
"""
import dataclasses
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# The training loader's line scanner: one home for "file:line: column X holds Y; expected Z".
from data.loading import _first_bad_line as first_bad_line
from data.loading import category_strings, read_table
from netfab import storage
from netfab.errors import DataError
from netfab.serve.inputs import STRING

log = logging.getLogger(__name__)

BATCH_ROWS = 16384  # rows per model call: measured best on 2 cores (8K: ~15% fewer items/s)
THREADS = 2  # concurrent model calls
NDJSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
ROW_NUMBER = "row"  # the id written when there is no id column: the row's number in the input, from 0


@dataclasses.dataclass
class PredictSummary:
    output: str
    rows: int
    read_seconds: float  # parsing the input files into batches of tensors
    score_seconds: float  # the model calls
    write_seconds: float

    @property
    def items_per_second(self) -> float:
        return self.rows / self.score_seconds if self.score_seconds else float("inf")


def read_batches(files: list[Path], schema, id_column: str, roles: dict[str, str] | None = None,
                 batch_rows: int = BATCH_ROWS) -> tuple[list[dict], np.ndarray]:
    """The model's feature columns cut into batches of tensors, ready to score, and every row's id.

    Nulls are filled as in training. Each batch is built once here, so that scoring is model
    calls alone. `roles` (column -> config key, as netfab.config.column_roles) words the error
    for a bad line. With no id column (""), the ids are the row numbers, from 0.
    """
    import tensorflow as tf

    roles = roles or {name: "numeric_columns" if kind != STRING else "categorical_columns"
                      for name, kind in schema.features.items()}
    tables = []
    for path in files:
        try:
            table = read_table(path)
        except pa.ArrowInvalid as error:
            if "Empty JSON file" in str(error) or "Empty CSV file" in str(error):
                continue
            # pyarrow says what but not where: scan the file to name the line and column.
            raise DataError(first_bad_line(path, roles) or f"{path}: cannot parse as newline-"
                            f"delimited JSON ({error}); each line must be one JSON object") from None
        wanted = [*schema.features, *([id_column] if id_column and id_column not in schema.features else [])]
        missing = [name for name in wanted if name not in table.column_names]
        if missing:
            carried = (f" and the id column is {id_column!r} (--id-column picks another)" if id_column
                       else "")
            raise DataError(f"{path} has no column(s) {', '.join(map(repr, missing))}; the model "
                            f"takes {', '.join(schema.features)}{carried}")
        tables.append(table.select(wanted))
    if not tables:
        raise DataError(f"no rows to score in {len(files)} file(s), e.g. {files[0]}")
    table = pa.concat_tables(tables, promote_options="permissive")
    rows = table.num_rows
    starts = range(0, rows, batch_rows)
    batches = [{} for _ in starts]
    for name, kind in schema.features.items():
        column = table[name]
        try:
            if kind == STRING:
                if (pa.types.is_integer(column.type) or pa.types.is_boolean(column.type)
                        or pa.types.is_list(column.type)):  # a list column's items: joined
                    column = pa.chunked_array([category_strings(chunk) for chunk in column.chunks], pa.string())
                if not (pa.types.is_string(column.type) or pa.types.is_null(column.type)):
                    raise pa.ArrowInvalid(f"type {column.type}")
                # Each distinct value becomes a Python string once, not once per row: string
                # columns repeat (a country, an item's title), so this halves the conversion.
                encoded = pc.fill_null(column.cast(pa.string()), "").combine_chunks().dictionary_encode()
                values = tf.constant(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=tf.string)
                indices = encoded.indices.to_numpy()
                for batch, start in zip(batches, starts):
                    batch[name] = tf.gather(values, indices[start:start + batch_rows])
            else:
                if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
                        or pa.types.is_null(column.type)):
                    raise pa.ArrowInvalid(f"type {column.type}")
                values = pc.fill_null(column.cast(pa.float32()), schema.numeric_fill[name]).to_numpy()
                for batch, start in zip(batches, starts):
                    batch[name] = tf.constant(values[start:start + batch_rows])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            expected = "strings or null" if kind == STRING else "numbers or null"
            located = next(filter(None, (first_bad_line(path, roles) for path in files)), None)
            raise DataError(located or f"column {name!r} holds values of {error}; the model "
                                       f"expects {expected}") from None
    if not id_column:
        return batches, np.arange(rows)
    ids = table[id_column].cast(pa.string()).to_numpy(zero_copy_only=False)
    return batches, ids


def score_batches(model, batches: list[dict], threads: int = THREADS, progress=None) -> np.ndarray:
    """Probabilities for every row of `batches` (as read_batches gives), `threads` model calls at a time."""
    scores, done, rows = [], 0, sum(len(next(iter(batch.values()))) for batch in batches)
    with ThreadPoolExecutor(threads) as pool:
        for part in pool.map(model.predict, batches):
            scores.append(part)
            done += len(part)
            if progress:
                progress(done, rows)
    return np.concatenate(scores) if scores else np.empty(0, np.float32)


def write_scores(ids: np.ndarray, scores: np.ndarray, id_column: str, output: str,
                 output_name: str = "probability", classes=()) -> str:
    """`id,probability` rows (CSV or NDJSON by the output's suffix), published whole; a column per
    class for a per-class model (and the likeliest `class` when the rows sum to 1: multiclass)."""
    import pandas as pd

    columns = {id_column or ROW_NUMBER: ids}
    if len(classes):
        columns.update({f"{output_name}_{name}": scores[:, i] for i, name in enumerate(classes)})
        if np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):  # softmax rows: one class per row
            columns["class"] = np.asarray(classes, dtype=object)[scores.argmax(axis=1)]
    else:
        columns[output_name] = scores
    frame = pd.DataFrame(columns)
    with tempfile.TemporaryDirectory(prefix="netfab-predict-") as tmp:
        local = Path(tmp) / Path(storage.local_path(output)).name
        if str(output).endswith(NDJSON_SUFFIXES):
            frame.to_json(local, orient="records", lines=True, double_precision=7)
        else:
            frame.to_csv(local, index=False, float_format="%.7g")
        return storage.publish_file(local, output)


def predict_file(model_uri: str, input_uri: str, output: str, batch_rows: int = BATCH_ROWS,
                 threads: int = THREADS, progress: bool = True, id_column: str | None = None) -> PredictSummary:
    """Score `input_uri` with the zip at `model_uri` into `output`; id_column: the column carried
    beside the scores (None: the model's id_column; "": the row number)."""
    from netfab.serve.model import ServingModel

    if batch_rows < 1 or threads < 1:
        raise DataError(f"batch rows and threads must be at least 1 (got {batch_rows}, {threads})")
    model = ServingModel.load(model_uri)
    files = storage.dataset_files(input_uri)
    started = time.perf_counter()
    id_column = model.id_column if id_column is None else id_column
    batches, ids = read_batches(files, model.inputs, id_column, model.column_roles, batch_rows)
    read_seconds = time.perf_counter() - started
    log.info("read %d rows from %d file(s) in %.1f s", len(ids), len(files), read_seconds)

    last = [0.0]

    def report(done, total):
        now = time.perf_counter()
        if done == total or now - last[0] >= 2:  # a line every 2 s at most
            last[0] = now
            rate = done / (now - scoring) if now > scoring else 0
            log.info("scored %d / %d rows (%.0f%%, %s items/s)", done, total, 100 * done / total,
                     f"{rate:,.0f}")

    scoring = time.perf_counter()
    scores = score_batches(model, batches, threads, report if progress else None)
    score_seconds = time.perf_counter() - scoring
    broken = ~np.isfinite(scores.reshape(len(scores), -1)).all(axis=1)
    if broken.any():
        bad = int(np.flatnonzero(broken)[0])
        log.warning("%d row(s) scored NaN, the first is row %d (id %s); check its features",
                    int(broken.sum()), bad, ids[bad])
    writing = time.perf_counter()
    published = write_scores(ids, scores, id_column, output, model.output, model.classes)
    return PredictSummary(published, len(ids), read_seconds, score_seconds, time.perf_counter() - writing)
