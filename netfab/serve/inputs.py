"""Raw JSON rows or columns -> checked numpy columns in the dtypes the SavedModel's signature takes.

    schema = FeatureSchema.from_signature(function, dataset_metadata)
    columns = schema.columns_from_rows([{"country": "DE", "price": 83.2, ...}])     # row form
    columns = schema.columns_from_inputs({"country": ["DE"], "price": [83.2], ...})  # columnar

Every feature of the signature must be present in every row; the value may be null (strings ->
"" which the model maps to the out-of-vocabulary bucket, numbers -> the training mean, the same
null policy as training: docs/data.md). A wrong type or a non-finite number is an InputError
naming the row and the field. Keys the model does not take (an id, the label) are ignored.

Speed: `decode` reads a request body with a msgspec decoder typed by this schema, which checks
every value's type in C while it parses (half the time of orjson plus checks in Python). A body
it refuses (a wrong type, a missing feature, NaN, malformed JSON) goes the careful way instead:
orjson or json, then the checks below, whose errors name the row and the field.
"""
import math
import operator
import typing

import msgspec
import numpy as np

from data.loading import category_string
from netfab.errors import NetfabError
from netfab.model_zip import SERVING_SIGNATURE
from netfab.serve.columns import ByteSlices
from netfab.serve.json_strings import string_slices

STRING, NUMBER = "string", "number"
_STR, _STR_OR_NULL = {str}, {str, type(None)}
_NUMBERS_OR_NULL = {float, int, type(None)}
FLOAT32_MAX = float(np.finfo(np.float32).max)
# A body at least this large (~128 rows of the usual columns) is decoded with its string columns
# left as JSON text and read as ByteSlices of that text: thousands of Python strings neither made
# nor handed to TensorFlow one by one. A small body's few strings are cheaper as Python strings.
RAW_STRINGS_MIN_BYTES = 16 * 1024
_STRING_LIST = msgspec.json.Decoder(list[str | None])


def _strings(raw: msgspec.Raw):
    """A string column left as JSON text: ByteSlices of it, or else Python strings as usual."""
    slices = string_slices(raw)
    return slices if slices is not None else _STRING_LIST.decode(raw)


def _row_label(index: int) -> str:
    return f"row {index}"


class InputError(NetfabError):
    """A request body the model cannot score; the message names the row and the field."""


def _type_name(value) -> str:
    return {str: "a string", bool: "a boolean", int: "a number", float: "a number",
            list: "a list", dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _values_getter(getter, count: int):
    """`getter` as a function that always returns a tuple: itemgetter/attrgetter of one key
    return the value itself, not a 1-tuple."""
    return getter if count > 1 else (lambda item: (getter(item),))


def _typed_decoder(features: dict[str, str], lists=frozenset(), raw_strings=False):
    """A msgspec decoder of either request form for these features, and a getter of a row's values;
    a list feature (lists) takes a JSON list of strings or integers, or its items already joined.
    raw_strings: the columnar form's string columns are left as JSON text (msgspec.Raw, validated
    but not decoded; netfab.serve.json_strings reads them)."""
    scalar = {STRING: str | None, NUMBER: float | None}  # msgspec reads a JSON int as a float
    names = [f"f{i}" for i in range(len(features))]  # features need not be Python identifiers
    kinds = [list[str | int] | str | None if name in lists else scalar[kind] for name, kind in features.items()]
    row = msgspec.defstruct("Row", list(zip(names, kinds)), rename=dict(zip(names, features)), gc=False)
    column_kinds = [msgspec.Raw if raw_strings and kind == scalar[STRING] else list[kind] for kind in kinds]
    columns = msgspec.defstruct("Columns", list(zip(names, column_kinds)), rename=dict(zip(names, features)))
    request = msgspec.defstruct("Request", [("instances", list[row] | None, None),
                                            ("inputs", columns | None, None),
                                            ("signature_name", typing.Literal[SERVING_SIGNATURE], SERVING_SIGNATURE)])
    return msgspec.json.Decoder(request), _values_getter(operator.attrgetter(*names), len(names))


class FeatureSchema:
    """The raw features a model takes: name -> STRING or NUMBER, the fill value for a null number,
    and which STRING features are list columns (sent as a JSON list, given to the model joined)."""

    def __init__(self, features: dict[str, str], numeric_fill: dict[str, float], lists=frozenset()):
        self.features = features
        self.numeric_fill = numeric_fill
        self.lists = frozenset(lists)
        self._getter = _values_getter(operator.itemgetter(*features), len(features))
        self._decoder, self._attributes = _typed_decoder(features, self.lists)
        self._raw_decoder = _typed_decoder(features, self.lists, raw_strings=True)[0]

    @classmethod
    def from_signature(cls, function, dataset_metadata: dict) -> "FeatureSchema":
        import tensorflow as tf

        specs = function.structured_input_signature[1]
        features = {name: STRING if spec.dtype == tf.string else NUMBER for name, spec in sorted(specs.items())}
        numeric = dataset_metadata.get("numeric", {})
        fill = {name: float(numeric.get(name, {}).get("mean", 0.0))
                for name, kind in features.items() if kind == NUMBER}
        return cls(features, fill, dataset_metadata.get("columns", {}).get("list", ()))

    # --- request bodies ---------------------------------------------------------------------
    def decode(self, body: bytes) -> tuple[dict, bool] | None:
        """(columns, row_form) for a well-formed body of either form; None for any other body.

        None means "take the careful way" (parse, then columns_from_rows / columns_from_inputs),
        which either finds the body fine after all (e.g. NaN, which only json.loads reads) or
        raises the InputError that names the row and the field.
        """
        try:
            request = (self._raw_decoder if len(body) >= RAW_STRINGS_MIN_BYTES else self._decoder).decode(body)
            if (request.instances is None) == (request.inputs is None):
                return None
            if request.instances is not None:
                if not request.instances:
                    return None
                values = zip(*map(self._attributes, request.instances))
                row_form = True
            else:
                values = [_strings(value) if type(value) is msgspec.Raw else value
                          for value in self._attributes(request.inputs)]
                row_form = False
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):  # the careful way says why
            return None
        columns = {name: self._column(name, kind, column, _row_label, typed=True)
                   for (name, kind), column in zip(self.features.items(), values)}
        lengths = {len(column) for column in columns.values()}
        if len(lengths) != 1 or not lengths.pop():
            return None  # columns of different lengths, or none at all: the careful way says which
        return columns, row_form

    # --- the two request forms ------------------------------------------------------------
    def columns_from_rows(self, rows) -> dict[str, np.ndarray]:
        """Row form: a non-empty list of objects, one per row."""
        if not isinstance(rows, list) or not rows:
            raise InputError('"instances" must be a non-empty list of rows, each a JSON object '
                             'of feature: value')
        try:
            # itemgetter + map + zip(*) transpose rows into columns in C: several times faster
            # than a Python loop per column, which matters for 1,000-row requests.
            values = zip(*map(self._getter, rows))
        except (KeyError, TypeError):
            raise self._row_problem(rows) from None
        return {name: self._column(name, kind, column, _row_label)
                for (name, kind), column in zip(self.features.items(), values)}

    def columns_from_inputs(self, inputs) -> dict[str, np.ndarray]:
        """Columnar form: an object of feature: [values], all lists of one length."""
        if not isinstance(inputs, dict):
            raise InputError('"inputs" must be a JSON object of feature: [values, one per row]')
        missing = [name for name in self.features if name not in inputs]
        if missing:
            raise InputError(f'"inputs" lacks feature(s) {", ".join(map(repr, missing))}; '
                             f"the model takes {', '.join(self.features)}")
        lengths = {}
        for name in self.features:
            if not isinstance(inputs[name], list):
                raise InputError(f'"inputs", field {name!r}: expected a list of values, got '
                                 f"{_type_name(inputs[name])}")
            lengths[name] = len(inputs[name])
        if len(set(lengths.values())) != 1:
            raise InputError(f'"inputs" lists differ in length: '
                             f"{', '.join(f'{k}={v}' for k, v in lengths.items())}")
        if not next(iter(lengths.values())):
            raise InputError('"inputs" lists are empty: send at least one row')
        return {name: self._column(name, kind, inputs[name], _row_label)
                for name, kind in self.features.items()}

    def check_column(self, name: str, values: list) -> np.ndarray:
        """One feature's values (a JSON list) as its column, by the columnar form's rules; errors
        name the row (the element) and the field. For protocols that send a column per feature."""
        return self._column(name, self.features[name], values, _row_label)

    # --- checks and conversion --------------------------------------------------------------
    def _row_problem(self, rows) -> InputError:
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                return InputError(f"row {i}: expected a JSON object of feature: value, got {_type_name(row)}")
            name = next((name for name in self.features if name not in row), None)
            if name is not None:
                hint = "null for an unknown number (the training mean is used)" if \
                    self.features[name] == NUMBER else "null or \"\" for an unknown value"
                return InputError(f"row {i}: missing feature {name!r} ({self.features[name]}); "
                                  f"send {hint}")
        return InputError("the rows could not be read")  # not reached: one row must be at fault

    def _column(self, name, kind, values, where, typed=False) -> np.ndarray:
        """`values` as a numpy column; typed: already known to be strings or numbers (or null)."""
        if name in self.lists:  # a list column: its items joined, as the model takes them
            return np.array([self._list(name, v, where(i)) for i, v in enumerate(values)], dtype=object)
        if type(values) is ByteSlices:  # strings read from a large body's JSON text (json_strings)
            return values
        if typed:  # msgspec checked each value's type while decoding
            types = _STR_OR_NULL if kind == STRING and None in values else _STR if kind == STRING \
                else _NUMBERS_OR_NULL
        else:
            types = set(map(type, values))  # one pass in C; the usual answer is {str} or {float, int}
        if kind == STRING:
            if types == _STR:
                return np.array(values, dtype=object)
            if types == _STR_OR_NULL:  # nulls are common (an unknown device): no per-value loop
                column = np.array(values, dtype=object)
                column[column == None] = ""  # noqa: E711 (elementwise comparison)
                return column
            return np.array([self._string(name, v, where(i)) for i, v in enumerate(values)], dtype=object)
        if types <= _NUMBERS_OR_NULL:
            try:
                with np.errstate(over="ignore", invalid="ignore"):  # overflow is caught just below
                    column = np.array(values, dtype=np.float64).astype(np.float32)  # None -> NaN
            except OverflowError:  # an integer beyond float64
                column = None
            if column is not None:
                # Only the non-finite values are looked at one by one: a null is filled; a NaN,
                # an infinity or a number beyond float32 is an error naming its row.
                for i in np.flatnonzero(~np.isfinite(column)).tolist():
                    column[i] = self._number(name, values[i], where(i))
                return column
        return np.array([self._number(name, v, where(i)) for i, v in enumerate(values)], dtype=np.float32)

    @staticmethod
    def _list(name, value, where) -> str:
        if value is None or type(value) is str:  # null: no item; a string: the items already joined
            return value or ""
        if type(value) is not list or not all(type(item) in (str, int) for item in value):
            raise InputError(f"{where}, field {name!r}: expected a list of strings or integers (or null), "
                             f"got {_type_name(value)} {value!r:.40}")
        return category_string(value)

    @staticmethod
    def _string(name, value, where) -> str:
        if value is None:
            return ""
        if type(value) in (int, bool):  # an integer or boolean category, as training read it
            return category_string(value)
        if type(value) is not str:
            raise InputError(f"{where}, field {name!r}: expected a string, got {_type_name(value)} "
                             f"{value!r:.40}")
        return value

    def _number(self, name, value, where) -> float:
        if value is None:
            return self.numeric_fill[name]
        if type(value) not in (int, float):
            raise InputError(f"{where}, field {name!r}: expected a number, got {_type_name(value)} "
                             f"{value!r:.40}")
        if isinstance(value, float) and math.isnan(value):
            raise InputError(f"{where}, field {name!r}: NaN is not a value the model can score; "
                             f"send null for an unknown number (the training mean is used)")
        if not abs(value) <= FLOAT32_MAX:
            raise InputError(f"{where}, field {name!r}: {value!r:.40} is not a finite float32 number "
                             f"(the model computes in float32: at most ±3.4e38)")
        return value

    # --- what the server shows ----------------------------------------------------------------
    def sample_columns(self, rows: int) -> dict[str, np.ndarray]:
        """Neutral rows for warm-up: an unseen word (the OOV bucket) and the training means."""
        # Not "": an empty title masks every token, and the bag-of-words mean of nothing is NaN.
        return {name: (np.full(rows, "warmup", dtype=object) if kind == STRING
                       else np.full(rows, self.numeric_fill[name], dtype=np.float32))
                for name, kind in self.features.items()}

    def signature_def(self, signature_name: str, output: str, classes: int = 0) -> dict:
        """The signature in TensorFlow Serving's metadata shape (raw features in, the output out:
        [rows], or [rows, classes] for a per-class model)."""
        def tensor(name, dtype, width=0):
            dims = [{"size": "-1", "name": ""}] + ([{"size": str(width), "name": ""}] if width else [])
            return {"dtype": dtype, "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": name}

        return {signature_name: {
            "inputs": {name: tensor(name, "DT_STRING" if kind == STRING else "DT_FLOAT")
                       for name, kind in self.features.items()},
            "outputs": {output: tensor(output, "DT_FLOAT", classes)},
            "method_name": "tensorflow/serving/predict"}}
