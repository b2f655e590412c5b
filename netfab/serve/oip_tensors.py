"""Open Inference Protocol v2 tensors -> the checked columns the model takes, and scores -> an output tensor.

    columns, rows = columns_from_inputs(model.inputs, request["inputs"], body, binary_start)
    tensor, data = output_tensor("probability", scores, binary=True)   # data: the bytes after the header

An input is one feature, shape [rows]: BYTES for a string feature, FP32 for a number. Its
elements come as JSON (`"data": [...]`) or, with the binary tensor data extension, as bytes
after the JSON header (`"parameters": {"binary_data_size": N}`, in the order of the inputs):
FP32 as little-endian float32, BYTES as a 4-byte little-endian length and that many bytes per
element. Inputs the model does not take are skipped, as the REST API ignores such keys.

The columns are what REST's columnar form produces, by the same rules (FeatureSchema): JSON data
goes through the same checks (null -> "" or the training mean; NaN, infinities and wrong types
refused). Binary FP32 has no null, so NaN is refused with the training mean to send instead.
Binary BYTES of a large request become ByteSlices of the body: no Python string per value,
TensorFlow cuts them out itself. Every error is an InputError (400) naming the input and what to send.
"""
import struct

import numpy as np

from netfab.serve.columns import ByteSlices
from netfab.serve.inputs import NUMBER, STRING, FeatureSchema, InputError

try:  # the elements of a BYTES tensor found in C (byte_elements.c, built by setup.py)
    from netfab.serve import _byte_elements
except ImportError:  # installed without a C compiler: found in numpy, more slowly
    _byte_elements = None

BYTES, FP32 = "BYTES", "FP32"
DATATYPES = {STRING: BYTES, NUMBER: FP32}
OUTPUT_DATATYPE = FP32
# Above this many bytes a BYTES input is read element by element: the vectorised reading keeps
# ~10 bytes of index per byte of the input for a moment.
CHAINED_MAX_BYTES = 8 * 2**20
FILTER_ROUNDS = 16  # rounds of removing false element starts before reading element by element
# Fewer rows than this: binary strings are walked and become a numpy array of str, which
# TensorFlow takes faster than it cuts a few values out of a body (an op per column, whatever
# its length); more become ByteSlices, read in numpy.
BYTE_SLICES_MIN_ROWS = 128
LENGTH = np.dtype("<u4")  # a BYTES element's length, as the extension sends it


def _input_label(name: str, kind: str) -> str:
    return f"input {name!r} ({DATATYPES[kind]})"


# --- reading the request's inputs ---------------------------------------------------------------
def columns_from_inputs(schema: FeatureSchema, inputs, body: bytes, binary_start: int | None) -> tuple[dict, int]:
    """The model's columns from the request's "inputs", and the row count.

    body: the whole request body; binary_start: where the binary data begins (the
    Inference-Header-Content-Length), None when the body is JSON only.
    """
    if not isinstance(inputs, list) or not inputs:
        raise InputError(f'"inputs" must be a non-empty list of tensors, one per feature: {_wanted(schema)}')
    found = {}  # feature -> (input object, its binary segment (start, size) or None)
    unknown = []
    offset = binary_start
    for index, tensor in enumerate(inputs):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InputError(f'inputs[{index}] must be an object with "name", "datatype", "shape" and '
                             f'"data" (or parameters.binary_data_size)')
        name = tensor["name"]
        size = _binary_size(tensor)
        segment = None
        if size is not None:
            if binary_start is None:
                raise InputError(f"input {name!r} has parameters.binary_data_size but the request has no "
                                 f"Inference-Header-Content-Length header: send it with the length of the "
                                 f"JSON header, the binary data after it")
            segment, offset = (offset, size), offset + size
        if name in found:
            raise InputError(f"input {name!r} is sent twice; send each feature once")
        if name in schema.features:
            found[name] = (tensor, segment)
        else:
            unknown.append(name)
    if binary_start is not None and offset != len(body):
        raise InputError(f"the binary data after the JSON header is {len(body) - binary_start} bytes, but "
                         f"the inputs' parameters.binary_data_size add up to {offset - binary_start}; "
                         f"give each binary input its size in bytes, in the order of the inputs")
    missing = [name for name in schema.features if name not in found]
    if missing:
        sent = f" (sent but not taken: {', '.join(map(repr, unknown))})" if unknown else ""
        raise InputError(f"missing {', '.join(_input_label(n, schema.features[n]) for n in missing)}{sent}; "
                         f"the model takes {_wanted(schema)}")
    rows = {name: _rows(name, schema.features[name], tensor) for name, (tensor, _) in found.items()}
    if len(set(rows.values())) != 1:
        raise InputError(f"inputs differ in shape: {', '.join(f'{n} [{r}]' for n, r in rows.items())}; "
                         f"every input holds one element per row, shape [rows]")
    count = next(iter(rows.values()))
    columns = {name: _column(schema, name, tensor, segment, body, count)
               for name, (tensor, segment) in found.items()}
    return {name: columns[name] for name in schema.features}, count


def _wanted(schema: FeatureSchema) -> str:
    return ", ".join(f"{name} {DATATYPES[kind]}" for name, kind in schema.features.items())


def _binary_size(tensor: dict) -> int | None:
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InputError(f"input {tensor['name']!r}: parameters must be an object")
    if "shared_memory_region" in parameters:
        raise InputError(f"input {tensor['name']!r}: shared memory is not supported here; send the data "
                         f"in the request (data, or parameters.binary_data_size)")
    size = parameters.get("binary_data_size")
    if size is None:
        return None
    if type(size) is not int or size < 0:
        raise InputError(f"input {tensor['name']!r}: parameters.binary_data_size must be a whole number of "
                         f"bytes, got {size!r:.40}")
    return size


def _rows(name: str, kind: str, tensor: dict) -> int:
    """The input's element count, after checking its datatype and shape."""
    datatype = tensor.get("datatype")
    if datatype != DATATYPES[kind]:
        what = "strings" if kind == STRING else "float32 numbers"
        raise InputError(f"input {name!r}: datatype {datatype!r:.40}, but the model takes {what} here: "
                         f"send datatype {DATATYPES[kind]}")
    shape = tensor.get("shape")
    if not (isinstance(shape, list) and len(shape) == 1 and type(shape[0]) is int and shape[0] > 0):
        raise InputError(f"input {name!r}: shape {shape!r:.40}, but the model takes one element per row: "
                         f"send shape [rows], rows at least 1")
    return shape[0]


def _column(schema: FeatureSchema, name: str, tensor: dict, segment, body: bytes, rows: int):
    if segment is None:
        if "data" not in tensor:
            raise InputError(f"input {name!r} has no data: send \"data\" (a list of {rows} values) or "
                             f"parameters.binary_data_size with the bytes after the JSON header")
        data = tensor["data"]
        if not isinstance(data, list) or len(data) != rows:
            got = f"{len(data)} values" if isinstance(data, list) else f"{type(data).__name__}"
            raise InputError(f"input {name!r}: shape [{rows}] but data holds {got}; send a flat list of "
                             f"{rows} values")
        return schema.check_column(name, data)  # REST's rules: null filled, NaN and wrong types refused
    if "data" in tensor:
        raise InputError(f"input {name!r} has both data and parameters.binary_data_size; send one of them")
    start, size = segment
    return binary_column(schema, name, body, start, size, rows)


def binary_column(schema: FeatureSchema, name: str, buffer: bytes, start: int, size: int, rows: int):
    """A feature's column from its binary data, buffer[start:start + size] (FP32 or BYTES by the
    feature's kind): the binary tensor data extension's, and OIP over gRPC's raw_input_contents."""
    if schema.features[name] == NUMBER:
        return _float32_column(schema, name, buffer, start, size, rows)
    if rows < BYTE_SLICES_MIN_ROWS:
        return _strings(buffer, start, size, rows, name)
    starts, lengths = byte_elements(buffer, start, size, rows, name)
    _check_utf8(buffer, start, size, starts, lengths, name)
    return ByteSlices(buffer, starts, lengths)


def _strings(body: bytes, start: int, size: int, rows: int, name: str) -> np.ndarray:
    """A few BYTES elements as a numpy array of str."""
    values = []
    for i, (begin, length) in enumerate(zip(*_walk(body, start, size, rows, name))):
        try:
            values.append(body[begin:begin + length].decode())
        except UnicodeDecodeError:
            raise InputError(f"input {name!r}, element {i}: not UTF-8 text; send strings encoded as UTF-8") from None
    return np.array(values, dtype=object)


def _float32_column(schema: FeatureSchema, name: str, body: bytes, start: int, size: int, rows: int) -> np.ndarray:
    if size != 4 * rows:
        raise InputError(f"input {name!r}: parameters.binary_data_size is {size} bytes, but shape [{rows}] of "
                         f"FP32 takes {4 * rows} (4 bytes, little-endian float32, per element)")
    # A view of the body: no copy; little-endian, as the extension sends numbers.
    column = np.frombuffer(body, dtype="<f4", count=rows, offset=start).astype(np.float32, copy=False)
    if not np.isfinite(column).all():
        i = int(np.argmin(np.isfinite(column)))
        if np.isnan(column[i]):
            raise InputError(f"input {name!r}, element {i}: NaN is not a value the model can score; for an "
                             f"unknown number send the training mean, {schema.numeric_fill[name]!r} (what "
                             f"null stands for), or send this input as JSON data with null there")
        raise InputError(f"input {name!r}, element {i}: {column[i]} is not a finite float32 number")
    return column


# --- BYTES elements: a 4-byte little-endian length, then that many bytes ----------------------------
def byte_elements(buffer: bytes, start: int, size: int, count: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `count` elements of buffer[start:start + size] begins (in `buffer`) and its length.

    Each element's place depends on every length before it: a walk, which byte_elements.c takes
    in C. Without it (no C compiler at install), a walk of one Python step per element would be
    slow for thousands, so the usual tensors are read in numpy instead: elements of one width at
    once (codes, ids), others by finding every place a length could begin and keeping the one
    chain that runs from the first byte to the last. Both are checked exactly; a tensor they
    cannot read is walked, and a malformed one gets an error naming the element.
    """
    if size < 4 * count:  # before any array of `count` entries is made: a shape can say anything
        raise InputError(f"input {name!r}: its {size} bytes (binary_data_size) cannot hold the {count} elements "
                         f"of its shape; each BYTES element is a 4-byte little-endian length, then that many bytes")
    found = (_in_c if _byte_elements is not None else _in_numpy)(buffer, start, size, count)
    if found is None:  # malformed (the walk names the element), or a layout numpy does not read
        starts, lengths = _walk(buffer, start, size, count, name)
        found = (np.array(starts, dtype=np.int64), np.array(lengths, dtype=np.int64))
    return found


def _in_c(buffer, start, size, count):
    found = np.empty((2, count), dtype=np.int64)
    return (found[0], found[1]) if _byte_elements.read(buffer, start, size, count, found) else None


def _in_numpy(buffer, start, size, count):
    found = _fixed_width(buffer, start, size, count)
    if found is None and size <= CHAINED_MAX_BYTES:
        found = _chained(buffer, start, size, count)
        if found is not None:
            found = (found[0] + (start + 4), found[1])  # positions in the buffer, past each length
    return found


def _fixed_width(buffer, start, size, count):
    width, rest = divmod(size, count)
    if rest or width < 4:
        return None
    prefixes = np.ndarray((count,), dtype=LENGTH, buffer=buffer, offset=start, strides=(width,))
    if not (prefixes == width - 4).all():
        return None
    return (np.arange(start + 4, start + 4 + count * width, width, dtype=np.int64),
            np.full(count, width - 4, dtype=np.int64))


def _chained(buffer, start, size, count):
    if size < 4 * count:
        return None
    found = _short_chained(buffer, start, size, count)
    if found is not None:
        return found
    # The 4 bytes at every position read as a length; a position is a candidate element start
    # if that length fits in what follows. Every true start is one. In text the false ones sit
    # just before a true start, made of a text byte and the zero bytes of its length.
    prefixes = np.ndarray((size - 3,), dtype=LENGTH, buffer=buffer, offset=start, strides=(1,))
    room = np.arange(size - 4, -1, -1, dtype=np.uint32)
    candidates = np.flatnonzero(prefixes <= room)
    if not len(candidates) or candidates[0] != 0:
        return None
    starts = _last_of_runs(candidates)
    found = _chain(starts, starts + 4 + prefixes[starts], size, count)
    return found if found is not None else _peeled_chain(candidates, prefixes, size, count)


def _short_chained(buffer, start, size, count):
    """The usual text: elements under 256 bytes without NUL bytes, so that the three high bytes
    of each length are the only zero bytes in a row: found with byte comparisons, which cost a
    fraction of reading a 4-byte length at every position. Anything else (a longer element, a NUL
    in the text, empty elements in a row) leaves a chain that does not check out: None."""
    data = np.frombuffer(buffer, dtype=np.uint8, count=size, offset=start)
    zero = data == 0
    candidates = np.flatnonzero(zero[1:-2] & zero[2:-1] & zero[3:])
    if not len(candidates) or candidates[0] != 0:
        return None
    starts = _last_of_runs(candidates)  # an empty element's 4 zero bytes make a run
    return _chain(starts, starts + 4 + data[starts], size, count)


def _last_of_runs(candidates: np.ndarray) -> np.ndarray:
    """The first guess at the element starts: the last candidate of each run of adjacent ones."""
    last = np.empty(len(candidates), dtype=bool)
    np.not_equal(candidates[1:], candidates[:-1] + 1, out=last[:-1])
    last[-1] = True
    return candidates[last]


def _peeled_chain(candidates, prefixes, size, count):
    """The chain from position 0 to the end, false starts peeled off: a start must be 0 or
    follow a live start, and be followed by a live start or the end."""
    nexts = candidates + 4 + prefixes[candidates]  # where the element after each would begin
    node = np.full(size + 1, -1, dtype=np.int32)  # position -> candidate index; size -> the end
    node[candidates] = np.arange(len(candidates), dtype=np.int32)
    node[size] = len(candidates)
    successor = node[nexts]
    alive = successor >= 0
    for _ in range(FILTER_ROUNDS):
        followed = np.zeros(len(candidates) + 1, dtype=bool)
        followed[successor[alive]] = True
        followed[0] = True
        keep = alive & followed[:-1] & np.append(alive, True)[successor]
        if np.array_equal(keep, alive):
            break
        alive = keep
    return _chain(candidates[alive], nexts[alive], size, count)


def _chain(starts, nexts, size, count):
    """(starts, lengths) if these starts are exactly the chain of `count` elements from 0 to `size`."""
    if len(starts) != count or starts[0] != 0 or nexts[-1] != size or not (starts[1:] == nexts[:-1]).all():
        return None
    return starts, nexts - starts - 4


def _walk(buffer, start, size, count, name) -> tuple[list, list]:
    """Element by element, with the reason when the bytes do not hold `count` elements."""
    read_length = struct.Struct("<I").unpack_from
    starts, lengths = [], []
    position, end = start, start + size
    layout = "each BYTES element is a 4-byte little-endian length, then that many bytes"
    for i in range(count):
        if position + 4 > end:
            held = f"holds only {i} elements" if position == end else f"ends inside the length of element {i}"
            raise InputError(f"input {name!r}: its {size} bytes (binary_data_size) {held}, but shape says "
                             f"{count}; {layout}")
        (length,) = read_length(buffer, position)
        if position + 4 + length > end:
            raise InputError(f"input {name!r}, element {i}: length {length}, but only {end - position - 4} "
                             f"bytes of its binary_data_size follow; {layout}")
        starts.append(position + 4)
        lengths.append(length)
        position += 4 + length
    if position != end:
        raise InputError(f"input {name!r}: {end - position} bytes are left after the {count} elements of its "
                         f"shape; give binary_data_size and shape for exactly these elements ({layout})")
    return starts, lengths


def _check_utf8(body: bytes, start: int, size: int, starts: np.ndarray, lengths: np.ndarray, name: str) -> None:
    """Strings must be UTF-8 text, as JSON's are (the cache and mixed batches read them as text)."""
    if body[start:start + size].isascii():  # the usual case, lengths under 128 included: one C pass
        return
    data = np.frombuffer(body, dtype=np.uint8, count=size, offset=start)
    text = np.ones(size, dtype=bool)
    for k in range(4, 0, -1):
        text[starts - start - k] = False  # the length bytes
    # The elements joined are valid UTF-8 and none begins with a continuation byte: then each
    # element alone is valid (a character cut at an element's end would continue in the next).
    continued = (data[starts[lengths > 0] - start] & 0xC0) == 0x80
    try:
        data[text].tobytes().decode("utf-8")
        bad = int(np.flatnonzero(lengths > 0)[np.argmax(continued)]) if continued.any() else None
    except UnicodeDecodeError as error:
        bad = int(np.searchsorted(np.cumsum(lengths), error.start, side="right"))
    if bad is not None:
        raise InputError(f"input {name!r}, element {bad}: not UTF-8 text; send strings encoded as UTF-8")


# --- the answer -------------------------------------------------------------------------------------
def output_tensor(output: str, scores: np.ndarray, binary: bool) -> tuple[dict, bytes]:
    """The response's output object and the bytes that follow the JSON header (b"" for JSON data)."""
    tensor = {"name": output, "datatype": OUTPUT_DATATYPE, "shape": list(scores.shape)}  # [rows] or [rows, classes]
    if not binary:
        return {**tensor, "data": scores.ravel()}, b""  # row-major, flat; orjson writes float32 as REST does
    data = scores.astype("<f4", copy=False).tobytes()
    return {**tensor, "parameters": {"binary_data_size": len(data)}}, data
