"""Split loaded rows and measure what the model builders need: a DatasetShapes.

    from data.preparation import prepare
    prepared = prepare(loaded.frame, config)
    prepared.shapes.cardinality("item_id"), prepared.shapes.embedding_dims["item_id"]

Everything is measured on the training split only (vocabularies, means, variances), so the
test metrics are honest. The vocabularies end up inside the exported model, which is why a
served model takes raw rows.
"""
import dataclasses
import math

import numpy as np
import pandas as pd

from netfab.errors import DataError

# Keras TextVectorization's "lower_and_strip_punctuation" removes exactly these characters;
# the text vocabulary must be built from the same tokens the model will see.
KERAS_PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
MIN_SPLIT_ROWS = 10


@dataclasses.dataclass(frozen=True)
class DatasetShapes:
    """What sizes a network: vocabularies, embedding widths and numeric statistics."""

    vocabularies: dict[str, list[str]]  # categorical column -> known values, most frequent first
    embedding_dims: dict[str, int]  # categorical column -> embedding width
    numeric_mean: dict[str, float]
    numeric_variance: dict[str, float]
    text_vocabulary: list[str]  # title tokens, most frequent first ("" and OOV excluded)
    text_max_tokens: int

    def cardinality(self, column: str) -> int:
        return len(self.vocabularies[column]) + 1  # + the out-of-vocabulary bucket


@dataclasses.dataclass
class PreparedData:
    train: pd.DataFrame
    test: pd.DataFrame
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


def prepare(frame: pd.DataFrame, config) -> PreparedData:
    train, test = split(frame, config)
    vocabularies = {c: _vocabulary(train[c], config.max_vocab_size, config.min_category_count)
                    for c in config.categorical_columns}
    cardinalities = {c: len(v) + 1 for c, v in vocabularies.items()}

    means, variances = {}, {}
    for column in config.numeric_columns:
        values = train[column]
        if values.isna().all():
            raise DataError(f"numeric column {column!r} is null in every training row")
        means[column] = float(values.mean())
        variances[column] = float(values.var(ddof=0)) or 1.0  # a constant column stays finite
    # The null policy for numerics: the training mean, in both splits.
    train = train.fillna(means)
    test = test.fillna(means)

    text_vocabulary, token_p95 = [], 0
    if config.text_column:
        tokens = tokenize(train[config.text_column])
        counts = tokens.explode().dropna().value_counts()
        text_vocabulary = _most_frequent(counts, config.text_vocab_size)
        token_p95 = int(np.percentile(tokens.str.len(), 95))

    shapes = DatasetShapes(
        vocabularies=vocabularies,
        embedding_dims={c: embedding_dim(n, config) for c, n in cardinalities.items()},
        numeric_mean=means, numeric_variance=variances,
        text_vocabulary=text_vocabulary, text_max_tokens=config.text_max_tokens)
    label = config.label_column
    summary = {
        "rows": {"total": len(frame), "train": len(train), "test": len(test)},
        "label_rate": {"train": float(train[label].mean()), "test": float(test[label].mean())},
        "cardinalities": cardinalities,
        "embedding_dims": shapes.embedding_dims,
        "test_oov_rate": {c: float((~test[c].isin(set(v))).mean()) for c, v in vocabularies.items()},
        "numeric": {c: {"mean": means[c], "variance": variances[c]} for c in means},
        "text": {"column": config.text_column, "vocab_size": len(text_vocabulary) + 2,
                 "max_tokens": config.text_max_tokens, "tokens_p95": token_p95},
    }
    return PreparedData(train, test, shapes, summary)


def split(frame: pd.DataFrame, config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded shuffle, then the first test_fraction of rows is the test split."""
    order = np.random.default_rng(config.seed).permutation(len(frame))
    n_test = math.ceil(len(frame) * config.test_fraction)
    test, train = frame.iloc[order[:n_test]], frame.iloc[order[n_test:]]
    if min(len(train), len(test)) < MIN_SPLIT_ROWS:
        raise DataError(f"{len(frame)} rows give a train/test split of {len(train)}/{len(test)} "
                        f"with test_fraction={config.test_fraction}; each side needs "
                        f"{MIN_SPLIT_ROWS}+ rows")
    for name, part in (("train", train), ("test", test)):
        if part[config.label_column].nunique() < 2:
            raise DataError(f"the {name} split has only label {part[config.label_column].iloc[0]:g}; "
                            f"AUC needs both classes: use more rows or another seed")
    return train.reset_index(drop=True), test.reset_index(drop=True)


def features_and_labels(frame: pd.DataFrame, config) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The model's inputs (raw values, by column) and labels, as numpy arrays."""
    features = {c: frame[c].to_numpy(dtype=object) for c in config.categorical_columns}
    features.update({c: frame[c].to_numpy(dtype="float32") for c in config.numeric_columns})
    if config.text_column:
        features[config.text_column] = frame[config.text_column].to_numpy(dtype=object)
    return features, frame[config.label_column].to_numpy(dtype="float32")


def _vocabulary(values: pd.Series, limit: int, min_count: int) -> list[str]:
    counts = values.value_counts()
    return _most_frequent(counts[counts >= min_count], limit)


def _most_frequent(counts: pd.Series, limit: int) -> list[str]:
    # Ties broken by value so that the same data always gives the same vocabulary.
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [value for value, _ in ordered[:limit] if value != ""]
