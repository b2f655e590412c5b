"""The front end: fitted on the training split, applied once to every row, split three ways.

    from data.preparation import prepare
    prepared = prepare(loaded, config)          # loaded: data.loading.LoadedRows
    prepared.train.features["item_id"]          # int32 vocabulary ids, what the numeric core takes
    prepared.shapes.cardinality("item_id"), prepared.shapes.embedding_dims["item_id"]

Splits: a seeded permutation of the rows; the first test_fraction is the test split (scored
once, at the end), the next validation_fraction the validation split (early stopping, the best
epoch, tuning), the rest trains. Everything is fitted on the training split only (vocabularies,
means, variances, text tokens), so validation and test figures are honest.

What the core receives, per row (the same the exported model's front end computes from raw
values, models/frontend.py):
  categorical  int32 id: 1 + the value's rank in its vocabulary, 0 for anything else ("", unseen)
  numeric      float32 (x - mean) / std of the training split; a null is 0 (the training mean)
  text         int32 [text_max_tokens] token ids, 0-padded (1: a token not in the column's vocabulary)
Strings are encoded once per distinct value (by the Keras layers the exported model uses, so
both paths agree exactly), then gathered for every row: no Python object per row.
"""
import dataclasses
import math

import numpy as np
import pandas as pd

from data.loading import LIST_SEPARATOR
from netfab.errors import DataError

# Keras TextVectorization's "lower_and_strip_punctuation" removes exactly these characters;
# the text vocabulary must be built from the same tokens the model will see.
KERAS_PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
MIN_SPLIT_ROWS = 10
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class DatasetShapes:
    """The front end's tables and what sizes a network: vocabularies, embedding widths, statistics."""

    vocabularies: dict[str, list[str]]  # categorical (and list) column -> known values, most frequent first
    embedding_dims: dict[str, int]  # categorical (and list) column -> embedding width
    numeric_mean: dict[str, float]
    numeric_variance: dict[str, float]
    text_vocabularies: dict[str, list[str]]  # text column -> its tokens, most frequent first ("" and OOV excluded)
    text_max_tokens: int
    task: str = "binary"
    classes: list[str] = dataclasses.field(default_factory=list)  # multiclass/multilabel: the output's
    # columns, in order (the classes or tags of the training split)
    label_mean: float = 0.0  # regression: the training split's target mean and standard deviation,
    label_std: float = 1.0  # which the head scales its output by (a standardised target trains best)
    list_max_items: int = 0  # list columns: ids per row, 0-padded

    def list_cardinality(self, column: str) -> int:
        return len(self.vocabularies[column]) + 2  # + padding and the out-of-vocabulary bucket

    def cardinality(self, column: str) -> int:
        return len(self.vocabularies[column]) + 1  # + the out-of-vocabulary bucket

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def text_vocab_size(self, column: str) -> int:
        return len(self.text_vocabularies[column]) + 2  # + padding "" and "[UNK]"

    @classmethod
    def from_dict(cls, values: dict) -> "DatasetShapes":
        return cls(**values)


@dataclasses.dataclass
class Split:
    """One split's core inputs and labels."""

    features: dict[str, np.ndarray]
    label: np.ndarray  # float32 [rows] (binary, regression), int32 class index [rows] (multiclass),
    # float32 multi-hot [rows, tags] (multilabel)
    weight: np.ndarray | None = None  # float32 [rows] from weight_column; None: every row counts 1

    def __len__(self) -> int:
        return len(self.label)


@dataclasses.dataclass
class PreparedData:
    train: Split
    validation: Split
    test: Split
    shapes: DatasetShapes
    summary: dict  # goes into dataset_metadata.json


def embedding_dim(cardinality: int, config) -> int:
    """config.embedding_dim if set, else min(cap, round(1.6 * cardinality ** 0.56)), at least 2."""
    if config.embedding_dim:
        return config.embedding_dim
    return max(2, min(config.embedding_dim_max, round(1.6 * cardinality ** 0.56)))


def tokenize(text: pd.Series) -> pd.Series:
    """Lists of tokens, as the model's TextVectorization layer splits them."""
    return text.str.lower().str.replace(KERAS_PUNCTUATION, "", regex=True).str.split()


def split_indices(rows: int, config) -> dict[str, np.ndarray]:
    """Row indices of the train, validation and test splits: seeded, disjoint, sorted."""
    order = np.random.default_rng(config.seed).permutation(rows)
    n_test = math.ceil(rows * config.test_fraction)
    n_validation = math.ceil(rows * config.validation_fraction)
    parts = {"test": order[:n_test], "validation": order[n_test:n_test + n_validation],
             "train": order[n_test + n_validation:]}
    sizes = {name: len(index) for name, index in parts.items()}
    if min(sizes.values()) < MIN_SPLIT_ROWS:
        raise DataError(f"{rows} rows give a train/validation/test split of {sizes['train']}/"
                        f"{sizes['validation']}/{sizes['test']} with validation_fraction="
                        f"{config.validation_fraction}, test_fraction={config.test_fraction}; "
                        f"each split needs {MIN_SPLIT_ROWS}+ rows: use more rows or larger fractions")
    return {name: np.sort(parts[name]) for name in SPLITS}


def split_rows(loaded, config) -> dict[str, np.ndarray]:
    """The train, validation and test rows of `config.split`: a seeded random split, or by_column:
    rows ordered by split_column's value (numbers by value, ISO dates and times as written), the
    earliest train, the next validation_fraction validate, the latest test_fraction test; rows
    sharing a value (a day, a group) stay in one split, so the shares are met at value boundaries."""
    if config.split == "random":
        return split_indices(loaded.rows, config)
    column = config.split_column
    strings = loaded.strings[column]
    if not (strings.codes != 0).all():
        raise DataError(f"split column {column!r} is null or \"\" in {int((strings.codes == 0).sum())} row(s); "
                        f"split = by_column places every row by its value: fill it in the query")
    order = sorted(range(1, len(strings.values)), key=lambda code: _natural(strings.values[code]))
    rank = np.zeros(len(strings.values), np.int64)
    rank[order] = np.arange(len(order))
    rows_per_value = np.bincount(rank[strings.codes], minlength=len(order))
    ends = np.cumsum(rows_per_value)  # rows up to and including each value, in order
    rows = loaded.rows
    n_train = rows - math.ceil(rows * config.test_fraction) - math.ceil(rows * config.validation_fraction)
    last_train = max(int(np.searchsorted(ends, n_train, side="right")) - 1, 0)
    last_validation = max(int(np.searchsorted(ends, n_train + math.ceil(rows * config.validation_fraction),
                                              side="right")) - 1, last_train + 1)
    row_rank = rank[strings.codes]
    parts = {"train": np.flatnonzero(row_rank <= last_train),
             "validation": np.flatnonzero((row_rank > last_train) & (row_rank <= last_validation)),
             "test": np.flatnonzero(row_rank > last_validation)}
    sizes = {name: len(index) for name, index in parts.items()}
    if min(sizes.values()) < MIN_SPLIT_ROWS:
        raise DataError(f"split column {column!r} gives a train/validation/test split of {sizes['train']}/"
                        f"{sizes['validation']}/{sizes['test']} rows ({len(order)} distinct values; rows "
                        f"sharing a value stay together); each split needs {MIN_SPLIT_ROWS}+ rows: use "
                        f"more rows, a finer column, or other fractions")
    return parts


def split_summary(loaded, index: dict[str, np.ndarray], config) -> dict:
    """How the rows were split, for dataset_metadata.json: the method, and by_column's first value of
    the validation and test splits (the cuts)."""
    if config.split == "random":
        return {"method": "random", "seed": config.seed}
    strings = loaded.strings[config.split_column]
    first = {name: min((strings.values[c] for c in np.unique(strings.codes[index[name]])), key=_natural)
             for name in ("validation", "test")}
    return {"method": "by_column", "column": config.split_column, "validation_from": first["validation"],
            "test_from": first["test"]}


def prepare(loaded, config) -> PreparedData:
    """Split `loaded` (data.loading.LoadedRows), fit the front end on train, encode every row once.

    Takes the loaded columns over: each is freed as soon as it is encoded and split, so the
    peak memory is the encoded splits plus one column.
    """
    index = split_rows(loaded, config)
    split = split_summary(loaded, index, config)
    label = config.label_column
    train = index["train"]
    labels, classes, label_summary = _labels(loaded.label, index, config)
    features = {name: {} for name in SPLITS}

    def keep(column: str, encoded: np.ndarray) -> None:
        for name in SPLITS:
            features[name][column] = encoded[index[name]]

    # Categoricals: a vocabulary of the training split's values, then an id per distinct value.
    vocabularies, oov_rates = {}, {}
    for column in config.categorical_columns:
        strings = loaded.strings.pop(column)
        counts = np.bincount(strings.codes[train], minlength=len(strings.values))
        vocabularies[column] = _most_frequent(strings.values, counts, config.max_vocab_size,
                                              config.min_category_count)
        if not vocabularies[column]:
            raise DataError(f"categorical column {column!r} has no value in the training split "
                            f"(null or \"\" in every row, or rarer than min_category_count="
                            f"{config.min_category_count}); drop it from categorical_columns")
        ids = lookup_ids(strings.values, vocabularies[column])[strings.codes]
        oov_rates[column] = {name: float((ids[index[name]] == 0).mean()) for name in ("validation", "test")}
        keep(column, ids)
        del strings, ids

    # List columns: items counted over the training rows (each distinct list weighted by its rows),
    # then every distinct list looked up once: [list_max_items] ids, 0-padded, 1 for an unknown item.
    for column in config.list_columns:
        strings = loaded.strings.pop(column)
        counts = np.bincount(strings.codes[train], minlength=len(strings.values))
        items = [v.split(LIST_SEPARATOR) if v else [] for v in strings.values]
        item_counts = pd.Series(np.repeat(counts, [len(i) for i in items]),
                                index=[x for i in items for x in i] or None, dtype=np.int64)
        item_counts = item_counts.groupby(level=0).sum()
        vocabularies[column] = _most_frequent(list(item_counts.index), item_counts.to_numpy(),
                                              config.max_vocab_size, config.min_category_count)
        if not vocabularies[column]:
            raise DataError(f"list column {column!r} has no item in the training split (null or [] in "
                            f"every row, or rarer than min_category_count={config.min_category_count}); "
                            f"drop it from list_columns")
        table = list_table(strings.values, vocabularies[column], config.list_max_items)
        keep(column, table[strings.codes])
        del strings, table

    # Numerics: standardised with the training split's mean and variance; a null is the mean.
    means, variances = {}, {}
    for column in config.numeric_columns:
        values = loaded.numbers.pop(column)
        seen = values[train][~np.isnan(values[train])]
        if not len(seen):
            raise DataError(f"numeric column {column!r} is null in every training row; drop it from "
                            f"numeric_columns or fix the query that fills it")
        means[column] = float(seen.mean(dtype=np.float64))
        variances[column] = float(seen.var(dtype=np.float64)) or 1.0  # a constant column stays finite
        keep(column, standardize(values, means[column], variances[column]))
        del values

    # Text: per column, tokens counted over the training rows (each distinct text weighted by its
    # rows), then every distinct text tokenised once.
    text_vocabularies, token_p95 = {}, {}
    for column in config.text_columns:
        strings = loaded.strings.pop(column)
        counts = np.bincount(strings.codes[train], minlength=len(strings.values))
        tokens = tokenize(pd.Series(strings.values, dtype=object))
        token_counts = pd.Series(np.repeat(counts, tokens.str.len()),
                                 index=np.concatenate(tokens.to_numpy()) if len(tokens) else [])
        token_counts = token_counts.groupby(level=0).sum()
        text_vocabularies[column] = _most_frequent(list(token_counts.index), token_counts.to_numpy(),
                                                   config.text_vocab_size, 1)
        if not text_vocabularies[column]:
            raise DataError(f"text column {column!r} has no words in the training split (null or "
                            f"empty in every row); drop it from text_columns")
        token_p95[column] = _weighted_percentile(tokens.str.len().to_numpy(), counts, 95)
        table = token_table(strings.values, text_vocabularies[column], config.text_max_tokens)
        keep(column, table[strings.codes])
        del strings, table

    shapes = DatasetShapes(
        vocabularies=vocabularies,
        embedding_dims={c: embedding_dim(len(v) + 1, config) for c, v in vocabularies.items()},
        list_max_items=config.list_max_items if config.list_columns else 0,
        numeric_mean=means, numeric_variance=variances,
        text_vocabularies=text_vocabularies, text_max_tokens=config.text_max_tokens, task=config.task,
        classes=classes, label_mean=label_summary.get("mean", {}).get("train", 0.0),
        label_std=label_summary.get("std", {}).get("train", 1.0) or 1.0)
    summary = {
        "rows": {"total": loaded.rows, **{name: len(index[name]) for name in SPLITS}},
        "fractions": {"validation": config.validation_fraction, "test": config.test_fraction},
        "split": split,
        "task": config.task,
        "label_column": label,
        **label_summary,
        "cardinalities": {c: len(v) + 1 for c, v in vocabularies.items()},
        "embedding_dims": shapes.embedding_dims,
        "validation_oov_rate": {c: r["validation"] for c, r in oov_rates.items()},
        "test_oov_rate": {c: r["test"] for c, r in oov_rates.items()},
        "numeric": {c: {"mean": means[c], "variance": variances[c]} for c in means},
        "text": {column: {"vocab_size": len(vocabulary) + 2, "max_tokens": config.text_max_tokens,
                          "tokens_p95": token_p95[column]} for column, vocabulary in text_vocabularies.items()},
    }
    weights = _weights(loaded, index, config)
    splits = {name: Split(features[name], labels[name], weights[name] if weights else None) for name in SPLITS}
    return PreparedData(**splits, shapes=shapes, summary=summary)


def _labels(label, index: dict[str, np.ndarray], config) -> tuple[dict, list[str], dict]:
    """Each split's target as the core trains on it, the classes (per-class tasks), and a summary
    for dataset_metadata.json (label_rate per split for binary, as before)."""
    column = config.label_column
    if config.task in ("binary", "regression"):
        labels = {name: label[index[name]] for name in SPLITS}
        if config.task == "regression":
            moments = {"mean": {n: float(v.mean(dtype=np.float64)) for n, v in labels.items()},
                       "std": {n: float(v.std(dtype=np.float64)) for n, v in labels.items()}}
            if not moments["std"]["train"]:
                raise DataError(f"label column {column!r} holds one value in every training row "
                                f"({moments['mean']['train']:g}): there is nothing to regress")
            return labels, [], moments
        for name in SPLITS:
            if len(np.unique(labels[name])) < 2:
                raise DataError(f"the {name} split has only label {labels[name][0]:g}; AUC needs both "
                                f"classes: use more rows or another seed")
        return labels, [], {"label_rate": {name: float(labels[name].mean()) for name in SPLITS}}

    codes, values = label.codes, label.values
    train_counts = np.bincount(codes[index["train"]], minlength=len(values))
    if config.task == "multiclass":
        classes = sorted((v for v, n in zip(values, train_counts) if n), key=_natural)
        if len(classes) < 2:
            raise DataError(f"label column {column!r} holds one class in the training split "
                            f"({classes[0]!r}); task = multiclass needs 2+: use task = binary for "
                            f"two classes written as 0/1, or more rows")
        position = {c: i for i, c in enumerate(classes)}
        table = np.array([position.get(v, -1) for v in values], np.int32)  # -1: not a training class
        labels = {name: table[codes[index[name]]] for name in SPLITS}
        for name in ("validation", "test"):
            unseen = sorted({values[c] for c in codes[index[name]][labels[name] < 0]}, key=_natural)
            if unseen:
                raise DataError(f"label column {column!r}: class(es) {', '.join(map(repr, unseen[:5]))} of the "
                                f"{name} split never occur in the training split, so no model can "
                                f"predict them: use more rows, another seed, or merge rare classes")
        rates = {name: np.bincount(labels[name], minlength=len(classes)) / len(labels[name]) for name in SPLITS}
        return labels, classes, {"classes": classes, "class_rate": {
            name: dict(zip(classes, map(float, rate))) for name, rate in rates.items()}}

    # multilabel: each distinct tag set split once, a multi-hot row per distinct set, then gathered
    tag_sets = [v.split(LIST_SEPARATOR) if v else [] for v in values]
    seen = np.zeros(len(values), bool)
    seen[np.flatnonzero(train_counts)] = True
    classes = sorted({t for tags, used in zip(tag_sets, seen) if used for t in tags}, key=_natural)
    if not classes:
        raise DataError(f"label column {column!r} holds no tag in any training row (null or [] "
                        f"everywhere): task = multilabel needs tags to learn")
    position = {c: i for i, c in enumerate(classes)}
    table = np.zeros((len(values), len(classes)), np.float32)
    for row, tags in enumerate(tag_sets):
        table[row, [position[t] for t in tags if t in position]] = 1.0
    labels = {name: table[codes[index[name]]] for name in SPLITS}
    return labels, classes, {"classes": classes, "tag_rate": {
        name: dict(zip(classes, map(float, labels[name].mean(axis=0)))) for name in SPLITS}}


def _weights(loaded, index: dict[str, np.ndarray], config) -> dict[str, np.ndarray] | None:
    """Each split's row weights (weight_column), checked: a number >= 0 in every row, some > 0."""
    if not config.weight_column:
        return None
    weight = loaded.numbers.pop(config.weight_column)
    bad = np.flatnonzero(~(weight >= 0))  # NaN (null) or negative
    if len(bad):
        raise DataError(f"weight column {config.weight_column!r} holds {weight[bad[0]]:g} in row {bad[0] + 1} "
                        f"({len(bad)} row(s) in all); weights are numbers >= 0 in every row")
    weights = {name: weight[index[name]] for name in SPLITS}
    if not weights["train"].sum():
        raise DataError(f"weight column {config.weight_column!r} is 0 in every training row: nothing would be learnt")
    return weights


def _natural(value: str):
    """Numbers in numeric order (2 before 10), then strings as written (ISO dates and times sort so):
    how people list classes and order time."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def encode(loaded, config, shapes: DatasetShapes) -> dict[str, np.ndarray]:
    """The core inputs of loaded rows with an already fitted front end (e.g. a trained model's)."""
    features = {}
    for column in config.categorical_columns:
        strings = loaded.strings[column]
        features[column] = lookup_ids(strings.values, shapes.vocabularies[column])[strings.codes]
    for column in config.list_columns:
        strings = loaded.strings[column]
        features[column] = list_table(strings.values, shapes.vocabularies[column],
                                      shapes.list_max_items)[strings.codes]
    for column in config.numeric_columns:
        features[column] = standardize(loaded.numbers[column], shapes.numeric_mean[column],
                                       shapes.numeric_variance[column])
    for column in config.text_columns:
        strings = loaded.strings[column]
        features[column] = token_table(strings.values, shapes.text_vocabularies[column],
                                       shapes.text_max_tokens)[strings.codes]
    return features


def lookup_ids(values: list[str], vocabulary: list[str]) -> np.ndarray:
    """int32 ids of distinct `values` by the exported model's StringLookup: 1 + rank, 0 = OOV."""
    from models.frontend import string_lookup

    return np.asarray(string_lookup(vocabulary)(np.array(values, dtype=object)), dtype=np.int32)


def list_table(values: list[str], vocabulary: list[str], max_items: int) -> np.ndarray:
    """int32 [len(values), max_items] item ids of distinct joined lists, by the exported model's layer."""
    from models.frontend import ListLookup

    layer = ListLookup(vocabulary, max_items)
    out = np.zeros((len(values), max_items), np.int32)
    step = 1 << 16
    for start in range(0, len(values), step):
        chunk = np.array(values[start:start + step], dtype=object)
        out[start:start + len(chunk)] = np.asarray(layer(chunk), dtype=np.int32)
    return out


def token_table(values: list[str], vocabulary: list[str], max_tokens: int) -> np.ndarray:
    """int32 [len(values), max_tokens] token ids of distinct texts, by the exported model's layer."""
    from models.frontend import text_vectorization

    layer = text_vectorization(vocabulary, max_tokens)
    out = np.zeros((len(values), max_tokens), np.int32)
    step = 1 << 16  # bounded tensors for a very large number of distinct texts
    for start in range(0, len(values), step):
        chunk = np.array(values[start:start + step], dtype=object)
        out[start:start + len(chunk)] = np.asarray(layer(chunk), dtype=np.int32)
    return out


def standardize(values: np.ndarray, mean: float, variance: float) -> np.ndarray:
    """float32 (x - mean) / std, a NaN (null) becoming 0 (the mean): models/frontend.Standardize in numpy."""
    mean32, std32 = np.float32(mean), np.maximum(np.sqrt(np.float32(variance)), np.float32(1e-7))
    out = (values.astype(np.float32, copy=False) - mean32) / std32
    out[np.isnan(out)] = 0.0
    return out


def _most_frequent(values: list[str], counts: np.ndarray, limit: int, min_count: int) -> list[str]:
    # Ties broken by value so that the same data always gives the same vocabulary.
    ranked = sorted((-int(n), v) for v, n in zip(values, counts) if n >= min_count and v != "")
    return [v for _, v in ranked[:limit]]


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> int:
    if not weights.sum():
        return 0
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return int(values[order][np.searchsorted(cumulative, cumulative[-1] * q / 100)])
