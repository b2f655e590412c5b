"""A large JSON body's string columns as ByteSlices of their text: no Python string per value.

    slices = string_slices(raw)   # raw: a msgspec.Raw holding ["DE","FR",...]; None: decode it as usual

msgspec validates a `msgspec.Raw` field's JSON while it skips it, so a column left raw is
already known to be well-formed JSON. Without a backslash in it no string holds an escape or a
quote, so every quote delimits a string. What stands between the strings then tells a flat array
of strings and nulls from any other value: only separators, whitespace, the array's own two
brackets and the letters of null, no other value being made of those. The usual column (compact
strings) is told by one byte between each two; other layouts (spaces, newlines, nulls) are
checked byte by byte outside the strings. Anything else (an escape, a number, a nested value,
text that is not UTF-8, a column of nulls only) gets None, and the caller decodes that column
into Python strings as before, whose checks give the usual errors.
"""
import numpy as np

from netfab.serve.columns import ByteSlices

QUOTE, OPEN, CLOSE, NULL_START = ord('"'), ord("["), ord("]"), ord("n")
# What may stand outside the strings of a flat array of strings and nulls: its brackets,
# separators, whitespace and the letters of null (given valid JSON, no other value is made of them).
OUTSIDE = np.zeros(256, dtype=bool)
OUTSIDE[list(b"[], \t\n\rnul")] = True
SEPARATOR = np.zeros(256, dtype=bool)  # what two strings may stand between
SEPARATOR[list(b", \t\n\r")] = True


def string_slices(raw) -> ByteSlices | None:
    """The strings of a JSON array given as `raw` (a msgspec.Raw), as slices of its text (a null
    as "", what null means for a string feature); None unless it is a flat array of strings and
    nulls without escapes."""
    text = bytes(raw)  # a copy of the column's text alone: what TensorFlow copies in, and C-speed searches
    if len(text) < 4 or text[0] != OPEN or text[-1] != CLOSE or b"\\" in text:
        return None
    if not text.isascii():
        try:
            text.decode()  # msgspec does not check a skipped value's UTF-8
        except UnicodeDecodeError:
            return None
    codes = np.frombuffer(text, dtype=np.uint8)
    quotes = (codes == QUOTE).nonzero()[0]
    opens, closes = quotes[0::2], quotes[1::2]
    if not len(closes) or len(opens) != len(closes):
        return None
    # The usual columns, strings only: between two of them one byte (a comma, as the JSON is valid),
    # or two separator bytes (then a comma and whitespace: Python's ", ").
    if opens[0] == 1 and closes[-1] == len(text) - 2:
        gaps = opens[1:] - closes[:-1]
        if (gaps == 2).all() or ((gaps == 3).all() and SEPARATOR[codes[closes[:-1] + 1]].all()
                                 and SEPARATOR[codes[closes[:-1] + 2]].all()):
            return ByteSlices(text, opens + 1, closes - opens - 1)
    return _spaced(text, codes, opens, closes)


def _spaced(text: bytes, codes: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> ByteSlices | None:
    """Any other layout (spaces, newlines, nulls): the bytes of each stretch between the strings
    (and before the first, after the last) may only be OUTSIDE ones, with no bracket but the
    array's own two; the nulls in each stretch become rows of "" in their places."""
    begins = np.concatenate(([0], closes + 1))  # the stretches outside the strings: [begin, end),
    sizes = np.concatenate((opens, [len(text)])) - begins  # each at least a comma or a bracket
    firsts = np.concatenate(([0], np.cumsum(sizes[:-1])))  # where each begins among the outside bytes
    outside = codes[np.arange(int(firsts[-1] + sizes[-1])) + np.repeat(begins - firsts, sizes)]
    if not OUTSIDE[outside].all() or np.count_nonzero((outside == OPEN) | (outside == CLOSE)) != 2:
        return None
    nulls = np.add.reduceat(outside == NULL_START, firsts)
    rows = len(opens) + int(nulls.sum())
    starts, lengths = np.zeros(rows, dtype=np.int64), np.zeros(rows, dtype=np.int64)
    string_rows = np.arange(len(opens)) + np.cumsum(nulls[:-1])  # each string's row: after the nulls before it
    starts[string_rows], lengths[string_rows] = opens + 1, closes - opens - 1
    return ByteSlices(text, starts, lengths)
