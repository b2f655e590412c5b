"""Binary tensors (gRPC's TensorProtos, OIP v2's tensors) -> checked numpy columns for the model.

    column = string_column("country", [b"DE", b"FR"])                       # object array of bytes
    column = string_column("country", length_prefixed("country", raw))      # OIP v2's raw BYTES
    column = number_column("price", np.array([83.2, np.nan], np.float32), fill=97.5)
    rows = common_length({"country": column, ...})

The JSON APIs check values in netfab.serve.inputs; a binary protocol has its values already
typed, so what is left to check is what JSON would have refused while parsing:
- strings must be UTF-8 (JSON cannot carry anything else): the model's string ops are not
  promised to accept other bytes, and a batch that fails fails every request merged into it;
- a float32 column has no null: NaN stands for an unknown number and becomes the training
  mean, the null policy of training (docs/data.md); an infinity is refused, as in JSON.
Strings stay bytes: TensorFlow takes them as they are, so no Python string is made per value.
"""
import struct

import numpy as np

from netfab.serve.inputs import InputError

_SEPARATOR = b"\n"  # ASCII: no UTF-8 sequence can start or end across it
_LENGTH = struct.Struct("<I")


def string_column(name: str, values) -> np.ndarray:
    """`values` (a sequence of bytes) as an object column, once every value is known to be UTF-8."""
    values = list(values)
    try:
        # One decode of the values joined by an ASCII byte checks each value exactly: a value
        # cut in the middle of a character stays invalid next to the separator.
        _SEPARATOR.join(values).decode("utf-8")
    except UnicodeDecodeError:
        row = next(i for i, value in enumerate(values) if not _is_utf8(value))
        raise InputError(f"input {name!r}, row {row}: {values[row]!r:.40} is not UTF-8 text; "
                         f"send strings encoded as UTF-8") from None
    return np.array(values, dtype=object)


def length_prefixed(name: str, buffer: bytes) -> list[bytes]:
    """The values of a raw BYTES tensor (OIP v2): each a 4-byte little-endian length, then its bytes."""
    values, offset, end = [], 0, len(buffer)
    unpack, append = _LENGTH.unpack_from, values.append
    try:
        while offset < end:
            (length,) = unpack(buffer, offset)
            offset += 4
            append(buffer[offset:offset + length])
            offset += length
    except struct.error:
        offset = end + 1  # a length cut short
    if offset != end:
        raise InputError(f"input {name!r}: the raw BYTES ends inside a value; each value is a 4-byte "
                         f"little-endian length followed by that many bytes")
    return values


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def number_column(name: str, values: np.ndarray, fill: float) -> np.ndarray:
    """A float32 column with NaN (unknown) replaced by `fill`; an infinity is an InputError naming its row."""
    finite = np.isfinite(values)
    if finite.all():
        return values
    infinite = np.flatnonzero(np.isinf(values))
    if len(infinite):
        row = int(infinite[0])
        raise InputError(f"input {name!r}, row {row}: {values[row]} is not a value the model can score; "
                         f"send NaN for an unknown number (the training mean is used)")
    return np.where(finite, values, np.float32(fill))  # a new array: `values` may be read-only


def common_length(columns: dict[str, np.ndarray]) -> int:
    """The rows of columns that all have the same, non-zero length; else an InputError listing them."""
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) != 1:
        raise InputError("inputs differ in length: " + ", ".join(f"{k}={v}" for k, v in lengths.items())
                         + "; send one value per row in every input")
    rows = next(iter(lengths.values()))
    if not rows:
        raise InputError("the inputs are empty: send at least one row")
    return rows


def missing_input_error(schema, given, dtype_names: dict[str, str]) -> InputError | None:
    """The error for features of `schema` absent from `given` (names), or None when all are there.

    dtype_names: the protocol's name for each kind of feature (netfab.serve.inputs.STRING, NUMBER)."""
    missing = [name for name in schema.features if name not in given]
    if not missing:
        return None
    wanted = ", ".join(f"{name} ({dtype_names[kind]})" for name, kind in schema.features.items())
    return InputError(f"missing input(s) {', '.join(map(repr, missing))}; the model takes {wanted}")
