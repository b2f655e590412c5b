"""A model's reference profile: histograms of its training rows and of its scores, and the same bins
counted for any other rows.

    from netfab.drift.profile import ReferenceProfile
    with ModelZip(uri) as package:
        profile = ReferenceProfile.from_zip(package)        # PackageError if the zip has none
    counts = profile.count(columns, scores)                  # {"price": histogram, ..., "score": ...}
    profile.drift(counts)                                    # {"price": PSI, ..., "score": PSI}

Training writes the profile into dataset_metadata.json (`reference_profile`); the categorical and text
bins name the front end's vocabularies, which stay in front_end.json (one home). The bins:

  numeric      deciles of the training split's values (fewer when values repeat), and null
  categorical  the TOP_VALUES most frequent training values, the rest of the model's vocabulary,
               out of vocabulary (what the model maps to its OOV bucket), and null ("" or absent)
  text         the same over title tokens (a row adds one count per token), and one count per empty title
  score        deciles of the model's scores on the validation split

Fractions are the training split's, with two exceptions measured on the validation split, because
training cannot show them honestly: the out-of-vocabulary share (the vocabulary is fitted on the
training split, so there it is 0, while new rows from the same distribution bring unseen item ids;
that share comes out of the rest-of-vocabulary bin, the tail where unseen values come from) and the
score (the model fitted its training rows).

Counting costs O(rows): a string is one dict lookup, a text's tokens are remembered per distinct text
(titles repeat; a larger batch's texts are factorised by pandas in C first), a column of numbers is
one binary search over the edges in numpy.
"""
import dataclasses
import itertools
import re

import numpy as np

from data.preparation import KERAS_PUNCTUATION
from netfab.drift.psi import population_stability
from netfab.errors import PackageError

PROFILE_KEY = "reference_profile"  # its key in dataset_metadata.json
FRONT_END_FILE = "front_end.json"
SCORE = "score"  # the model's probability: its histogram sits beside the features'
QUANTILE_BINS = 10
TOP_VALUES = 20
NUMERIC, CATEGORICAL, TEXT = "numeric", "categorical", "text"
VERSION = 1
TEXT_CACHE = 100_000  # distinct texts whose token bins are remembered
FACTORIZE_ROWS = 64  # more texts than this: factorised in C first, then each distinct one split
# The tokens of one text as the front end splits them (data.preparation.tokenize does it for a column).
_PUNCTUATION = re.compile(KERAS_PUNCTUATION)


@dataclasses.dataclass
class Bins:
    """One feature's (or the score's) bins, how values fall into them, and the reference fractions."""

    kind: str  # NUMERIC, CATEGORICAL, TEXT or SCORE
    labels: list[str]  # one per bin, for tables and plots
    fractions: np.ndarray  # the reference's share in each bin, summing to 1
    edges: np.ndarray | None = None  # numeric and score: interior cut points, ascending
    vocabulary: list[str] | None = None  # categorical and text: the front end's, most frequent first
    top: int = 0  # categorical and text: bins of their own for the first `top` vocabulary entries
    _bins_of: dict | None = dataclasses.field(default=None, repr=False)
    _texts: dict = dataclasses.field(default_factory=dict, repr=False)

    # Categorical and text bins after the top values, in this order.
    REST, OOV, NULL = 0, 1, 2

    def count(self, values, weights=None) -> np.ndarray:
        """A float64 histogram of `values` (a row each, or a distinct value each with `weights`)."""
        if self.kind in (NUMERIC, SCORE):
            return self._count_numbers(values, weights)
        values = values.ravel() if isinstance(values, np.ndarray) else values
        if self.kind == TEXT and len(values) > FACTORIZE_ROWS and weights is None:  # each distinct text once
            import pandas as pd

            codes, uniques = pd.factorize(np.asarray(values, dtype=object))  # a null's code: -1, counted last
            codes[codes < 0] = len(uniques)
            return self.count(np.append(uniques, None), np.bincount(codes, minlength=len(uniques) + 1))
        if self.kind == CATEGORICAL:
            lookup, oov = self._lookup(), self.top + self.OOV
            bins = np.fromiter(map(lookup.get, values, itertools.repeat(oov)), np.intp, len(values))
            return np.bincount(bins, weights, minlength=len(self.labels)).astype(np.float64)
        token_bins = [self._token_bins(value) for value in values]
        lengths = np.fromiter(map(len, token_bins), np.intp, len(token_bins))
        bins = np.fromiter(itertools.chain.from_iterable(token_bins), np.intp, int(lengths.sum()))
        return np.bincount(bins, None if weights is None else np.repeat(weights, lengths),
                           minlength=len(self.labels)).astype(np.float64)

    def _lookup(self) -> dict:
        """Value -> bin for every vocabulary entry and for null; built once (a dict lookup per row
        beats numpy and pandas calls at the sizes a server scores)."""
        if self._bins_of is None:
            bins_of = {value: min(rank, self.top + self.REST) for rank, value in enumerate(self.vocabulary)}
            self._bins_of = {**bins_of, "": self.top + self.NULL, None: self.top + self.NULL}
        return self._bins_of

    def _token_bins(self, text) -> tuple[int, ...]:
        """The bins of a text's tokens (an empty text: the empty bin once); remembered per text, as
        titles repeat (TEXT_CACHE distinct texts at most)."""
        bins = self._texts.get(text)
        if bins is None:
            lookup, oov = self._lookup(), self.top + self.OOV
            tokens = _PUNCTUATION.sub("", text.lower()).split() if isinstance(text, str) else []
            bins = tuple(lookup.get(token, oov) for token in tokens) or (self.top + self.NULL,)
            if len(self._texts) >= TEXT_CACHE:
                self._texts.clear()
            self._texts[text] = bins
        return bins

    def _count_numbers(self, values, weights) -> np.ndarray:
        # As float32 first, as training read them and the server checks them: 4.1 then falls in the
        # same bin whether it came from a training file or a request.
        values = np.asarray(values, dtype=np.float32).astype(np.float64).ravel()
        bins = np.searchsorted(self.edges, values, side="left")  # bin i: edges[i-1] < x <= edges[i]
        if self.kind == NUMERIC:
            bins[np.isnan(values)] = len(self.edges) + 1
        return np.bincount(bins, weights, minlength=len(self.labels)).astype(np.float64)

    def to_json(self) -> dict:
        entry = {"kind": self.kind, "labels": self.labels, "fractions": [round(float(f), 6) for f in self.fractions]}
        if self.edges is not None:
            entry["edges"] = self.edges.tolist()
        else:
            entry["top"] = self.top
        return entry

    @classmethod
    def from_json(cls, entry: dict, vocabulary: list[str] | None = None) -> "Bins":
        bins = cls(entry["kind"], list(entry["labels"]), np.asarray(entry["fractions"], dtype=np.float64))
        if "edges" in entry:
            bins.edges = np.asarray(entry["edges"], dtype=np.float64)
        else:
            bins.vocabulary, bins.top = list(vocabulary), int(entry["top"])
        return bins


def number_bins(kind: str, values: np.ndarray) -> Bins:
    """Quantile bins fitted on `values` (NaN: null), with the fractions of `values` in them."""
    values = np.asarray(values, dtype=np.float64).ravel()
    seen = values[~np.isnan(values)]
    edges = np.unique(np.quantile(seen, np.arange(1, QUANTILE_BINS) / QUANTILE_BINS)) if len(seen) else np.array([])
    labels = ([f"<= {edges[0]:.4g}"] + [f"{a:.4g} to {b:.4g}" for a, b in zip(edges, edges[1:])]
              + [f"> {edges[-1]:.4g}"]) if len(edges) else ["any"]
    bins = Bins(kind, labels + ["(null)"] * (kind == NUMERIC), np.array([]), edges=edges)
    bins.fractions = _fractions(bins.count(values))
    return bins


def vocabulary_bins(kind: str, vocabulary: list[str]) -> Bins:
    """Bins for the `TOP_VALUES` first entries of a front end's vocabulary, the rest, OOV and null."""
    top = min(TOP_VALUES, len(vocabulary))
    labels = list(vocabulary[:top]) + ["(rest of vocabulary)", "(out of vocabulary)",
                                        "(null)" if kind == CATEGORICAL else "(empty)"]
    return Bins(kind, labels, np.array([]), vocabulary=list(vocabulary), top=top)


def _fractions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts


def one_score_per_row(outputs) -> np.ndarray:
    """The score whose distribution is profiled: the output itself ([rows]: a probability, a value),
    or for a per-class output ([rows, classes]) the likeliest class's probability."""
    outputs = np.asarray(outputs)
    return outputs if outputs.ndim == 1 else outputs.max(axis=1)


class TrainingCounts:
    """What training knows of its rows before the front end is fitted: the numeric bins, and for each
    string column its distinct values with their counts in the training and validation splits.

    Taken before data.preparation.prepare frees the raw columns (a count per distinct value, not a
    copy of the rows); `reference` finishes the profile once the vocabularies and scores exist.
    """

    def __init__(self, loaded, splits: dict[str, np.ndarray], config):
        train, validation = splits["train"], splits["validation"]
        self.rows = {"train": len(train), "validation": len(validation)}
        self.numeric = {c: number_bins(NUMERIC, loaded.numbers[c][train]) for c in config.numeric_columns}
        self.strings = {}
        for column, strings in loaded.strings.items():
            size = len(strings.values)
            self.strings[column] = (np.asarray(strings.values, dtype=object),
                                    np.bincount(strings.codes[train], minlength=size),
                                    np.bincount(strings.codes[validation], minlength=size))
        self.text_columns = set(config.text_columns)
        self.skipped = set(config.list_columns) | {config.split_column}  # not profiled: lists, the split

    def reference(self, shapes, validation_scores) -> dict:
        """The reference profile (JSON) with the fitted front end's `shapes` and the validation scores."""
        features = dict(self.numeric)
        for column, (values, train_counts, validation_counts) in self.strings.items():
            if column in self.skipped:
                continue
            kind = TEXT if column in self.text_columns else CATEGORICAL
            bins = vocabulary_bins(kind, shapes.text_vocabularies[column] if kind == TEXT else shapes.vocabularies[column])
            fractions = _fractions(bins.count(values, train_counts))
            rest, oov = bins.top + Bins.REST, bins.top + Bins.OOV
            fractions[oov] = _fractions(bins.count(values, validation_counts))[oov]
            # New rows' unseen values take their share from the vocabulary's tail, not from its most
            # frequent values (Good-Turing): the rest of the vocabulary gets what remains.
            fractions[rest] = max(0.0, 1.0 - fractions.sum() + fractions[rest])
            bins.fractions = _fractions(fractions)
            features[column] = bins
        return {"version": VERSION, "rows": self.rows,
                "measured_on": "the training split; out-of-vocabulary shares and the score on the validation split",
                "features": {name: bins.to_json() for name, bins in features.items()},
                SCORE: number_bins(SCORE, one_score_per_row(validation_scores)).to_json()}


@dataclasses.dataclass
class ReferenceProfile:
    features: dict[str, Bins]
    score: Bins
    rows: dict[str, int]  # the reference's rows: train, validation

    @classmethod
    def from_zip(cls, package) -> "ReferenceProfile":
        """The profile of an opened ModelZip; PackageError when the zip was trained without one."""
        profile = package.json("dataset_metadata.json").get(PROFILE_KEY)
        if profile is None:
            raise PackageError(f"{package.uri} has no reference profile (trained before netfab wrote one into "
                               f"dataset_metadata.json), so drift cannot be measured against it: retrain it "
                               f"with fab train")
        return cls.from_json(profile, package.json(FRONT_END_FILE))

    @classmethod
    def from_json(cls, profile: dict, front_end: dict) -> "ReferenceProfile":
        if profile.get("version") != VERSION:
            raise PackageError(f"reference profile version {profile.get('version')} is not {VERSION}, the one "
                               f"this netfab reads; use the netfab that trained the zip, or retrain")
        vocabularies = {**front_end["vocabularies"]}
        features = {}
        for name, entry in profile["features"].items():
            texts = front_end.get("text_vocabularies") or {name: front_end.get("text_vocabulary")}  # earlier zips: one
            vocabulary = texts.get(name) if entry["kind"] == TEXT else vocabularies.get(name)
            features[name] = Bins.from_json(entry, vocabulary)
        return cls(features, Bins.from_json(profile[SCORE]), dict(profile["rows"]))

    def count(self, columns: dict, scores=None) -> dict[str, np.ndarray]:
        """Each feature's histogram over `columns` (raw: strings with ""/None for null, numbers with
        NaN), and the score's over `scores` when given. A feature missing from `columns` is left out."""
        counts = {name: bins.count(columns[name]) for name, bins in self.features.items() if name in columns}
        if scores is not None:
            counts[SCORE] = self.score.count(one_score_per_row(scores))
        return counts

    def bins(self, name: str) -> Bins:
        return self.score if name == SCORE else self.features[name]

    def drift(self, counts: dict[str, np.ndarray]) -> dict[str, float]:
        """PSI of each histogram in `counts` against the reference."""
        return {name: population_stability(self.bins(name).fractions, observed) for name, observed in counts.items()}

    def columns_from_rows(self, rows: list[dict]) -> dict[str, np.ndarray]:
        """Rows (JSON objects) as raw columns of this profile's features; an absent key is null."""
        columns = {}
        for name, bins in self.features.items():
            values = [row.get(name) for row in rows]
            columns[name] = (np.array([np.nan if v is None else v for v in values], dtype=np.float64)
                             if bins.kind == NUMERIC else np.array(values, dtype=object))
        return columns
