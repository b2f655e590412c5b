"""gRPC's tensors (TensorFlow Serving's TensorProtos, OIP v2's `contents`) -> checked numpy columns.

    column = string_column("country", tensor.string_val)                         # object array of bytes
    column = number_column("price", np.frombuffer(tensor.tensor_content, "<f4"), fill=97.5)
    rows = common_length({"country": column, ...})

What JSON's parser or the checks of netfab.serve.inputs refuse, these refuse too, in the words of
the binary protocols (netfab.serve.oip_tensors, whose reading OIP's raw_input_contents share):
strings must be UTF-8, as JSON's are; a float32 tensor has no null, so NaN is refused with the
training mean to send instead, and an infinity is refused.
Strings stay bytes: TensorFlow takes them as they are, so no Python string is made per value.
"""
import numpy as np

from netfab.serve.inputs import InputError

_SEPARATOR = b"\n"  # ASCII: no UTF-8 sequence can start or end across it


def string_column(name: str, values) -> np.ndarray:
    """`values` (a sequence of bytes) as an object column, once every value is known to be UTF-8."""
    values = list(values)
    try:
        # One decode of the values joined by an ASCII byte checks each value exactly: a value
        # cut in the middle of a character stays invalid next to the separator.
        _SEPARATOR.join(values).decode("utf-8")
    except UnicodeDecodeError:
        row = next(i for i, value in enumerate(values) if not _is_utf8(value))
        raise InputError(f"input {name!r}, element {row}: not UTF-8 text; send strings encoded as UTF-8") from None
    return np.array(values, dtype=object)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def number_column(name: str, values: np.ndarray, fill: float) -> np.ndarray:
    """A float32 column whose values are all finite; else an InputError naming the element.

    fill: the training mean, the value to send for an unknown number (what REST's null stands for)."""
    if np.isfinite(values).all():
        return values
    i = int(np.argmin(np.isfinite(values)))
    if np.isnan(values[i]):
        raise InputError(f"input {name!r}, element {i}: NaN is not a value the model can score; for an unknown "
                         f"number send the training mean, {fill!r} (what null stands for in REST)")
    raise InputError(f"input {name!r}, element {i}: {values[i]} is not a finite float32 number")


def common_length(columns: dict) -> int:
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
