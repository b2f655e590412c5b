"""Predict request bodies read straight into column arrays by compiled code (numba), no Python
object per value.

    parser = BodyParser({"country": "string", "price": "number"}, numeric_fill={"price": 83.2})
    start_compiling()               # once per process, in the background (see below)
    parsed = parser.parse(body)     # None: not compiled yet, or not a plain, well-formed body
    parsed.columns["price"]         # float32 array, nulls filled with the training mean
    parsed.columns["country"]       # ByteSlices: (start, length) of each value in the body

Why: for a 1,000-row request, msgspec's typed decode makes ~12,000 Python objects, and turning
them into numpy columns, checking them and freeing them costs as much again; together that was
twice the model's own time per row (benchmarks/serve.py). Here one pass over the bytes fills
float32 columns and notes where each string lies; TensorFlow then cuts the strings out of the
body itself (netfab.serve.columns.ByteSlices).

The fast path takes only what it can read exactly, and answers None for everything else, which
goes the careful way (msgspec or json, with errors naming the row and the field), so both ways
give the same columns or the same error:
- either form, each feature exactly once per row (or once as a column), other keys (any
  JSON value) skipped; "signature_name" only as "serving_default";
- strings without escapes (a backslash anywhere in a string, or invalid UTF-8: None);
- numbers as JSON numbers or null; the few the exact fast conversion cannot take (a mantissa
  beyond 2^53, an exponent beyond 22) are converted by Python's float() afterwards, so every
  number is correctly rounded as msgspec does; one beyond float32 (an error) goes the careful way;
- strictly valid JSON around them: anything else is None, never a guess.

Compiling takes ~55 s (the helpers are inlined, which makes the code ~1.6x faster). numba
keeps the machine code in its on-disk cache, so this is paid once per installation: a child
process compiles into the cache while the server already answers by the careful way, then the
server loads the cached code (~0.5 s) and parse() starts answering. The child ends with the
server, however the server ends.
"""
import atexit
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading

import numba
import numpy as np

from netfab.serve.columns import ByteSlices

STRING_KIND, NUMBER_KIND = 0, 1
FLOAT32_MAX = float(np.finfo(np.float32).max)
OK, NOT_PLAIN = 0, 1
NEXT, CLOSED = 0, 1
FORM_ROWS, FORM_COLUMNS = 1, 2

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # prctl option, <linux/prctl.h>
_compiled = threading.Event()  # set once _parse_body is compiled (or loaded from the cache) here
_compiling = threading.Lock()


class Parsed:
    """One body's columns: feature -> float32 array (numbers) or ByteSlices (strings)."""
    __slots__ = ("columns", "rows", "row_form")

    def __init__(self, columns, rows, row_form):
        self.columns, self.rows, self.row_form = columns, rows, row_form


class BodyParser:
    def __init__(self, features: dict[str, str], numeric_fill: dict[str, float]):
        names = [name.encode() for name in features]
        self.features = features
        self._names = np.frombuffer(b"".join(names), dtype=np.uint8).copy()
        self._name_starts = np.cumsum([0] + [len(n) for n in names], dtype=np.int64)
        self._kinds = np.array([STRING_KIND if kind == "string" else NUMBER_KIND for kind in features.values()],
                               dtype=np.int64)
        # index of each feature among those of its kind: its row in the numbers or strings array
        self._slots = np.zeros(len(features), dtype=np.int64)
        counts = [0, 0]
        for i, kind in enumerate(self._kinds):
            self._slots[i], counts[kind] = counts[kind], counts[kind] + 1
        self._numeric = [name for name, kind in features.items() if kind != "string"]
        self._strings = [name for name, kind in features.items() if kind == "string"]
        self._fill = np.array([numeric_fill[name] for name in self._numeric], dtype=np.float64)

    def parse(self, body: bytes) -> Parsed | None:
        if not self.features or not _compiled.is_set():
            return None
        return self._parse(body)

    def _parse(self, body: bytes) -> Parsed | None:
        # Every row holds each feature once, at least 2 bytes each (a value and a separator):
        # a bound on the rows, so that the arrays never grow (np.empty: untouched pages cost nothing).
        capacity = len(body) // (2 * len(self.features)) + 1
        numbers = np.empty((len(self._numeric), capacity), dtype=np.float64)
        starts = np.empty((len(self._strings), capacity), dtype=np.int64)
        lengths = np.empty((len(self._strings), capacity), dtype=np.int64)
        hard = np.empty((max(1, len(self._numeric) * capacity // 4), 4), dtype=np.int64)
        status, form, rows, n_hard = _parse_body(
            np.frombuffer(body, dtype=np.uint8), self._names, self._name_starts, self._kinds, self._slots,
            self._fill, numbers, starts, lengths, hard)
        if status != OK:
            return None
        numbers = numbers[:, :rows]
        if n_hard:  # numbers the exact fast conversion could not take: Python's float() rounds them
            for slot, row, start, length in hard[:n_hard].tolist():
                value = float(body[start:start + length])
                if not abs(value) <= FLOAT32_MAX:
                    return None  # beyond float32: the careful way names the row
                numbers[slot, row] = value
        columns = {}
        for slot, name in enumerate(self._numeric):
            columns[name] = numbers[slot].astype(np.float32)
        for slot, name in enumerate(self._strings):
            columns[name] = ByteSlices(body, starts[slot, :rows].copy(), lengths[slot, :rows].copy())
        return Parsed({name: columns[name] for name in self.features}, rows, form == FORM_ROWS)


def start_compiling() -> None:
    """Make the parser ready in a background thread (once per process); parse() answers None until then."""
    if _compiling.acquire(blocking=False):
        threading.Thread(target=_compile_via_cache, name="request-parser-compile", daemon=True).start()


def compile_now() -> None:
    """Compile (or load from numba's cache) in this process, with the argument types parse() uses."""
    BodyParser({"x": "number", "s": "string"}, {"x": 0.0})._parse(b"{}")
    _compiled.set()


def compile_in_child(parent_pid: int) -> None:
    """The compile child's entry point: compile into numba's cache, and end when the server ends."""
    if sys.platform == "linux":
        # The kernel kills this process when the thread that started it ends, which is when the
        # server ends (that thread waits for this process), even by kill -9.
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the server ended before that took effect
        sys.exit(1)
    compile_now()


def _compile_via_cache() -> None:
    # Compiling here would hold the GIL for ~55 s while the server answers requests.
    child = subprocess.Popen(
        [sys.executable, "-c", f"from netfab.serve.request_parser import compile_in_child; compile_in_child({os.getpid()})"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, sys.path))})
    atexit.register(child.kill)  # a server that exits stops the compile too (a no-op once it is done)
    try:
        _, errors = child.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        child.kill()
        _, errors = child.communicate()
    if child.returncode:
        log.warning("the compiled request parser is off, msgspec reads every body (correct, slower): compiling "
                    "it failed; check that numba imports in this Python and that its cache folder is "
                    "writable (set NUMBA_CACHE_DIR):\n%s", errors[-2000:])
        return
    compile_now()
    log.info("fast request parser ready")


def _bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


# Words the parser compares against, as byte arrays numba reads as global constants.
NULL, TRUE, FALSE = _bytes("null"), _bytes("true"), _bytes("false")
INSTANCES, INPUTS, SIGNATURE_NAME = _bytes("instances"), _bytes("inputs"), _bytes("signature_name")
SERVING_DEFAULT = _bytes('"serving_default"')
MAX_EXACT = np.uint64(2 ** 53)  # a float64 holds every integer up to here
POW10 = np.array([10.0 ** i for i in range(23)])  # exact in float64 up to 1e22
jit = numba.njit(cache=True, nogil=True, boundscheck=False)
# Helpers are inlined into their callers: a call between compiled functions passing arrays
# costs ~80 ns of reference counting, more than reading a value. Even inlined, a helper handed
# the body costs an atomic reference count increment and decrement per call, so the loops over
# many values (rows_form, string_list, number_list, skip_value) read the usual ones themselves
# (plain ASCII keys and strings, a comma right before the next value) and call helpers for the
# rest. Short decimals go through one helper (short_decimal) all the same: its exactness
# argument deserves one home, for ~5% of the parse time.
inline = numba.njit(cache=True, nogil=True, boundscheck=False, inline="always")


@inline
def ws(b, p):
    n = b.size
    while p < n and (b[p] == 32 or b[p] == 10 or b[p] == 13 or b[p] == 9):
        p += 1
    return p


@inline
def literal(b, p, word):
    """p after `word` (null/true/false) at p, or -1."""
    if p + word.size > b.size:
        return -1
    for i in range(word.size):
        if b[p + i] != word[i]:
            return -1
    return p + word.size


@inline
def string_end(b, p, plain):
    """b[p] is '"': the index of the closing quote, or -1. plain: refuse escapes (values
    cut out of the body must be the string itself); else skip over them."""
    n = b.size
    p += 1
    while p < n:
        c = b[p]
        if 35 <= c <= 127 and c != 92:  # most bytes: printable ASCII other than " and backslash
            p += 1
            continue
        if c == 34:  # "
            return p
        if c == 32 or c == 33:
            p += 1
            continue
        if c < 32:
            return -1  # control characters must be escaped in JSON
        if c == 92:  # backslash: a valid escape, skipped over
            if plain or p + 1 >= n:
                return -1
            e = b[p + 1]
            if e == 117:  # \uXXXX
                if p + 5 >= n:
                    return -1
                for k in range(2, 6):
                    h = b[p + k]
                    if not (48 <= h <= 57 or 65 <= h <= 70 or 97 <= h <= 102):
                        return -1
                p += 6
                continue
            if not (e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 or e == 114 or e == 116):
                return -1
            p += 2
            continue
        # UTF-8: a lead byte and its continuation bytes, overlongs and surrogates refused
        if 0xC2 <= c <= 0xDF:
            extra, low, high = 1, 0x80, 0xBF
        elif c == 0xE0:
            extra, low, high = 2, 0xA0, 0xBF
        elif c == 0xED:
            extra, low, high = 2, 0x80, 0x9F
        elif 0xE1 <= c <= 0xEF:
            extra, low, high = 2, 0x80, 0xBF
        elif c == 0xF0:
            extra, low, high = 3, 0x90, 0xBF
        elif 0xF1 <= c <= 0xF3:
            extra, low, high = 3, 0x80, 0xBF
        elif c == 0xF4:
            extra, low, high = 3, 0x80, 0x8F
        else:
            return -1
        if p + extra >= n or not (low <= b[p + 1] <= high):
            return -1
        for k in range(2, extra + 1):
            if not (0x80 <= b[p + k] <= 0xBF):
                return -1
        p += extra + 1
    return -1


@inline
def number(b, p):
    """A JSON number at p: (end, value, exact). end -1: not a number. exact False: the
    value needs a correctly rounding conversion (too many digits or a large exponent)."""
    n = b.size
    negative = False
    if p < n and b[p] == 45:  # -
        negative = True
        p += 1
    if p >= n or not (48 <= b[p] <= 57):
        return -1, 0.0, False
    mantissa = np.uint64(0)
    digits = 0  # significant digits in mantissa
    if b[p] == 48:  # a leading 0 stands alone
        p += 1
    else:
        while p < n and 48 <= b[p] <= 57:
            if digits < 19:
                mantissa = mantissa * np.uint64(10) + np.uint64(b[p] - 48)
                if mantissa:
                    digits += 1
            else:
                digits += 1
            p += 1
    scale = 0
    if digits > 19:
        scale = digits - 19  # integer digits dropped beyond 19
    if p < n and b[p] == 46:  # .
        p += 1
        if p >= n or not (48 <= b[p] <= 57):
            return -1, 0.0, False
        while p < n and 48 <= b[p] <= 57:
            if digits < 19:
                mantissa = mantissa * np.uint64(10) + np.uint64(b[p] - 48)
                if mantissa:
                    digits += 1
                scale -= 1
            else:
                digits += 1
            p += 1
    if p < n and (b[p] == 101 or b[p] == 69):  # e E
        p += 1
        exp_negative = False
        if p < n and (b[p] == 43 or b[p] == 45):
            exp_negative = b[p] == 45
            p += 1
        if p >= n or not (48 <= b[p] <= 57):
            return -1, 0.0, False
        exponent = 0
        while p < n and 48 <= b[p] <= 57:
            if exponent < 100000:
                exponent = exponent * 10 + (b[p] - 48)
            p += 1
        scale += -exponent if exp_negative else exponent
    if mantissa == 0:
        return p, -0.0 if negative else 0.0, True
    if digits <= 19 and mantissa <= MAX_EXACT and -22 <= scale <= 22:
        # Clinger's fast path: both factors are exact in float64, so the one rounding of the
        # product (or quotient) gives the correctly rounded value, as strtod would.
        result = float(mantissa)
        result = result * POW10[scale] if scale >= 0 else result / POW10[-scale]
        return p, -result if negative else result, True
    return p, 0.0, False


@inline
def skip_scalar(b, p):
    """p after a string, number, true, false or null at p; -1 for anything else."""
    if p >= b.size:
        return -1
    c = b[p]
    if c == 34:
        end = string_end(b, p, False)
        return -1 if end < 0 else end + 1
    if c == 110:
        return literal(b, p, NULL)
    if c == 116:
        return literal(b, p, TRUE)
    if c == 102:
        return literal(b, p, FALSE)
    end, _, _ = number(b, p)
    return end


@jit
def skip_value(b, p):
    """p after any JSON value at p (nested arrays and objects too, up to 64 deep), or -1."""
    n = b.size
    open_brackets = np.empty(64, dtype=np.uint8)
    depth = 0
    while True:
        # a value at p
        if p < 0 or p >= n:
            return -1
        c = b[p]
        if c == 91 or c == 123:  # [ {
            if depth == 64:
                return -1
            open_brackets[depth] = c
            depth += 1
            p = ws(b, p + 1)
            if p < b.size and b[p] == c + 2:  # ] or }: empty
                depth -= 1
                p += 1
            elif c == 123:
                _, _, p = key(b, p, False)
                continue
            else:
                continue
        else:
            end = p  # the closing quote of a string of printable ASCII at p, if there is one
            if c == 34:
                end += 1
                while end < n and 32 <= b[end] <= 127 and b[end] != 34 and b[end] != 92:
                    end += 1
            if end > p and end < n and b[end] == 34:
                p = end + 1
            else:
                p = skip_scalar(b, p)
                if p < 0:
                    return -1
        # after a value: close brackets, or a comma before the next value
        while depth:
            if open_brackets[depth - 1] == 91 and p + 1 < n and b[p] == 44 and b[p + 1] > 32:
                p += 1  # a comma right before a value
                break
            p, state = after_item(b, p, open_brackets[depth - 1] + 2)
            if p < 0:
                return -1
            if state == CLOSED:
                depth -= 1
            else:
                if open_brackets[depth - 1] == 123:
                    _, _, p = key(b, p, False)
                break
        if depth == 0:
            return p


@inline
def feature_of(b, start, end, names, name_starts):
    """Index of the feature named b[start:end], or -1."""
    length = end - start
    for f in range(name_starts.size - 1):
        if name_starts[f + 1] - name_starts[f] != length:
            continue
        same = True
        for i in range(length):
            if b[start + i] != names[name_starts[f] + i]:
                same = False
                break
        if same:
            return f
    return -1


@inline
def string_item(b, p):
    """A string feature's value at p, null as "": (p after it, start, length), p -1 if not plain."""
    if p < b.size and b[p] == 34:
        end = string_end(b, p, True)
        if end < 0:
            return -1, 0, 0
        return end + 1, p + 1, end - p - 1
    return literal(b, p, NULL), 0, 0


@inline
def short_decimal(b, p):
    """The usual number at p, read here: (p after it, value), p -1 if it is not one. Up to 15
    digits (more overflow the mantissa; number() reads those), no exponent: its mantissa is below
    2^53 and its scale at least -15, so Clinger's conditions hold: the value is number()'s, and
    far within float32."""
    n = b.size
    first = p + 1 if p < n and b[p] == 45 else p  # after a minus sign
    q, mantissa = first, 0
    while q < n and 48 <= b[q] <= 57:
        mantissa = mantissa * 10 + (b[q] - 48)
        q += 1
    digits = q - first
    fraction = 0
    if q < n and b[q] == 46:
        q += 1
        while q < n and 48 <= b[q] <= 57:
            mantissa = mantissa * 10 + (b[q] - 48)
            q += 1
            fraction += 1
    if not (0 < digits and digits + fraction <= 15
            and (digits == 1 or b[first] != 48)  # a leading 0 stands alone
            and b[q - 1] != 46  # a point needs digits after it
            and not (q < n and (b[q] == 101 or b[q] == 69))):  # no exponent
        return -1, 0.0
    value = mantissa / POW10[fraction]
    return q, -value if first > p else value


@inline
def number_item(b, p, fill):
    """A number feature's value at p, null as `fill`: (p after it, value, exact) as number();
    p -1 if not plain (beyond float32 too)."""
    if p < b.size and b[p] == 110:
        return literal(b, p, NULL), fill, True
    end, value, exact = number(b, p)
    if exact and not abs(value) <= FLOAT32_MAX:
        return -1, 0.0, False
    return end, value, exact


@inline
def note_hard(hard, n_hard, slot, row, start, end):
    """Note a number number() could not convert exactly, for Python's float(): n_hard after it,
    -1 if full."""
    if n_hard >= hard.shape[0]:
        return -1
    hard[n_hard, 0] = slot
    hard[n_hard, 1] = row
    hard[n_hard, 2] = start
    hard[n_hard, 3] = end - start
    return n_hard + 1


@inline
def after_item(b, p, closer):
    """After an item of a list or object: (p of the next item, NEXT) after a comma,
    (p after it, CLOSED) at `closer`, (-1, CLOSED) for anything else."""
    p = ws(b, p)
    if p < b.size and b[p] == 44:  # ,
        return ws(b, p + 1), NEXT
    if p < b.size and b[p] == closer:
        return p + 1, CLOSED
    return -1, CLOSED


@inline
def key(b, p, plain):
    """An object key at p and the ':' after it: (key start, key end, p after ':'), or -1s.
    plain: no escapes (a feature's name); else any key (inside a skipped value)."""
    if p >= b.size or b[p] != 34:
        return -1, -1, -1
    end = string_end(b, p, plain)
    if end < 0:
        return -1, -1, -1
    q = ws(b, end + 1)
    if q >= b.size or b[q] != 58:  # :
        return -1, -1, -1
    return p + 1, end, ws(b, q + 1)


@jit
def rows_form(b, p, names, name_starts, kinds, slots, fill, numbers, starts, lengths, hard):
    """'[' at p: rows of features. (p after ']', rows, n_hard); p -1 if not plain.
    Reads the usual keys and values itself, as string_list and number_list do."""
    n = b.size
    features = name_starts.size - 1
    seen = np.full(features, -1, dtype=np.int64)  # the last row that had each feature
    # Rows mostly list their keys in one order: follows[f + 1] is the feature that came after
    # feature f (follows[0]: first) last time, tried before the others.
    follows = np.zeros(features + 1, dtype=np.int64)
    p = ws(b, p + 1)
    row, n_hard = 0, 0
    if p < n and b[p] == 93:
        return -1, 0, 0  # no rows: the careful way says so
    while True:
        if p >= n or b[p] != 123 or row >= numbers.shape[1] or row >= starts.shape[1]:
            return -1, 0, 0
        p = p + 1 if p + 1 < n and b[p + 1] == 34 else ws(b, p + 1)
        found, previous = 0, -1
        if p < n and b[p] == 125:
            return -1, 0, 0  # an empty row lacks every feature
        while True:
            # the usual key: printable ASCII, then ':' and at most one space before the value
            end = p
            if p < n and b[p] == 34:
                end += 1
                while end < n and 32 <= b[end] <= 127 and b[end] != 34 and b[end] != 92:
                    end += 1
            q = end + 2 if end + 2 < n and b[end + 1] == 58 and b[end + 2] == 32 else end + 1
            if end > p and q + 1 < n and b[end] == 34 and b[end + 1] == 58 and b[q + 1] > 32:
                k0, k1, p = p + 1, end, q + 1
            else:
                k0, k1, p = key(b, p, True)
                if p < 0:
                    return -1, 0, 0
            f = -1  # the feature named b[k0:k1], the expected one first
            g = follows[previous + 1]
            for _ in range(features):
                if name_starts[g + 1] - name_starts[g] == k1 - k0:
                    i = 0
                    while i < k1 - k0 and b[k0 + i] == names[name_starts[g] + i]:
                        i += 1
                    if i == k1 - k0:
                        f = g
                        break
                g = g + 1 if g + 1 < features else 0
            if f >= 0:
                if seen[f] == row:
                    return -1, 0, 0  # a feature twice in one row
                seen[f] = row
                follows[previous + 1] = f
                previous = f
                found += 1
            string, slot = f >= 0 and kinds[f] == STRING_KIND, slots[f] if f >= 0 else 0
            end = p  # the closing quote of a string of printable ASCII at p, if there is one
            if p < n and b[p] == 34:
                end += 1
                while end < n and 32 <= b[end] <= 127 and b[end] != 34 and b[end] != 92:
                    end += 1
            if end > p and end < n and b[end] == 34:
                if string:
                    starts[slot, row], lengths[slot, row] = p + 1, end - p - 1
                elif f >= 0:
                    return -1, 0, 0  # a string for a number
                p = end + 1
            else:
                q, value = short_decimal(b, p)
                if q >= 0 and not string:
                    if f >= 0:
                        numbers[slot, row] = value
                    p = q
                elif f < 0:
                    p = skip_value(b, p)
                elif string:
                    p, starts[slot, row], lengths[slot, row] = string_item(b, p)
                else:
                    start = p
                    p, numbers[slot, row], exact = number_item(b, p, fill[slot])
                    if not exact and p >= 0:
                        n_hard = note_hard(hard, n_hard, slot, row, start, p)
                        if n_hard < 0:
                            return -1, 0, 0
                if p < 0:
                    return -1, 0, 0
            # a comma and at most one space right before the next key, or the row's end
            q = p + 2 if p + 2 < n and b[p + 1] == 32 else p + 1
            if q < n and b[p] == 44 and b[q] == 34:
                p = q
                continue
            if p < n and b[p] == 125:
                p += 1
                break
            p, state = after_item(b, p, 125)
            if state == CLOSED:
                break
        if p < 0 or found != features:
            return -1, 0, 0  # a missing feature: the careful way names the row and the feature
        row += 1
        q = p + 2 if p + 2 < n and b[p + 1] == 32 else p + 1
        if q < n and b[p] == 44 and b[q] == 123:
            p = q
            continue
        p, state = after_item(b, p, 93)
        if state == CLOSED:
            return p, row, n_hard


@jit
def string_list(b, p, starts, lengths):
    """A string feature's list, p after its '[': (p after ']', values) into starts and lengths;
    p -1 if not plain."""
    n = b.size
    row = 0
    if p < n and b[p] == 93:
        return p + 1, row
    while row < starts.size:
        end = p  # the closing quote of a string of printable ASCII at p, if there is one
        if p < n and b[p] == 34:
            end += 1
            while end < n and 32 <= b[end] <= 127 and b[end] != 34 and b[end] != 92:
                end += 1
        if end > p and end < n and b[end] == 34:
            starts[row], lengths[row] = p + 1, end - p - 1
            p = end + 1
        else:  # anything else (UTF-8, an escape, null, not a string)
            p, starts[row], lengths[row] = string_item(b, p)
            if p < 0:
                return -1, 0
        row += 1
        if p + 1 < n and b[p] == 44 and b[p + 1] > 32:  # a comma right before a value (whitespace is <= 32)
            p += 1
        else:
            p, state = after_item(b, p, 93)
            if state == CLOSED:
                return p, row
    return -1, 0


@jit
def number_list(b, p, slot, fill, numbers, hard, n_hard):
    """A number feature's list, p after its '[': (p after ']', values, n_hard) into numbers
    (and hard); p -1 if not plain."""
    n = b.size
    row = 0
    if p < n and b[p] == 93:
        return p + 1, row, n_hard
    while row < numbers.size:
        q, value = short_decimal(b, p)
        if q >= 0:
            numbers[row] = value
            p = q
        else:  # anything else (an exponent, more digits, null, not a number)
            start = p
            p, numbers[row], exact = number_item(b, p, fill)
            if p < 0:
                return -1, 0, 0
            if not exact:
                n_hard = note_hard(hard, n_hard, slot, row, start, p)
                if n_hard < 0:
                    return -1, 0, 0
        row += 1
        if p + 1 < n and b[p] == 44 and b[p + 1] > 32:
            p += 1
        else:
            p, state = after_item(b, p, 93)
            if state == CLOSED:
                return p, row, n_hard
    return -1, 0, 0


@jit
def columns_form(b, p, names, name_starts, kinds, slots, fill, numbers, starts, lengths, hard):
    """'{' at p: feature -> [values]. (p after '}', rows, n_hard); p -1 if not plain."""
    features = name_starts.size - 1
    counts = np.full(features, -1, dtype=np.int64)
    n_hard = 0
    p = ws(b, p + 1)
    if p < b.size and b[p] == 125:
        return -1, 0, 0
    while True:
        k0, k1, p = key(b, p, True)
        if p < 0:
            return -1, 0, 0
        f = feature_of(b, k0, k1, names, name_starts)
        if f < 0:
            p = skip_value(b, p)
        else:
            if counts[f] >= 0 or p >= b.size or b[p] != 91:
                return -1, 0, 0  # a feature twice, or not a list
            slot = slots[f]
            if kinds[f] == STRING_KIND:
                p, counts[f] = string_list(b, ws(b, p + 1), starts[slot], lengths[slot])
            else:
                p, counts[f], n_hard = number_list(b, ws(b, p + 1), slot, fill[slot], numbers[slot],
                                                   hard, n_hard)
        if p < 0:
            return -1, 0, 0
        p, state = after_item(b, p, 125)
        if state == CLOSED:
            break
    if p < 0:
        return -1, 0, 0
    rows = counts[0]
    for f in range(features):
        if counts[f] != rows:
            return -1, 0, 0  # a missing feature or lists of different lengths
    if rows <= 0:
        return -1, 0, 0
    return p, rows, n_hard


@jit
def _parse_body(b, names, name_starts, kinds, slots, fill, numbers, starts, lengths, hard):
    """(status, form, rows, n_hard) of a whole body, its values written into the arrays."""
    form, rows, n_hard = 0, 0, 0
    p = ws(b, 0)
    if p >= b.size or b[p] != 123:
        return NOT_PLAIN, form, rows, n_hard
    p = ws(b, p + 1)
    while True:
        k0, k1, p = key(b, p, True)
        if p < 0:
            return NOT_PLAIN, form, rows, n_hard
        length = k1 - k0
        if length == 9 and literal(b, k0, INSTANCES) == k1:
            if form or p >= b.size or b[p] != 91:
                return NOT_PLAIN, form, rows, n_hard
            form = FORM_ROWS
            p, rows, n_hard = rows_form(b, p, names, name_starts, kinds, slots, fill, numbers,
                                        starts, lengths, hard)
        elif length == 6 and literal(b, k0, INPUTS) == k1:
            if form or p >= b.size or b[p] != 123:
                return NOT_PLAIN, form, rows, n_hard
            form = FORM_COLUMNS
            p, rows, n_hard = columns_form(b, p, names, name_starts, kinds, slots, fill, numbers,
                                           starts, lengths, hard)
        elif length == 14 and literal(b, k0, SIGNATURE_NAME) == k1:
            p = literal(b, p, SERVING_DEFAULT)  # only the one signature, written plainly
        else:
            p = skip_value(b, p)
        if p < 0:
            return NOT_PLAIN, form, rows, n_hard
        p, state = after_item(b, p, 125)
        if state == CLOSED:
            break
    if p < 0 or ws(b, p) != b.size or not form:
        return NOT_PLAIN, form, rows, n_hard
    return OK, form, rows, n_hard
