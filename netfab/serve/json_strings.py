"""A large JSON body's string columns as ByteSlices of their text: no Python string per value.

    slices = string_slices(raw)   # raw: a msgspec.Raw holding ["DE","FR",...]; None: decode it as usual

msgspec validates a `msgspec.Raw` field's JSON while it skips it, so a column left raw is
already known to be well-formed JSON. Without a backslash in it no string holds an escape or a
quote, so every quote delimits a string, and a flat array of strings is told apart from any other
value by the text between them: one separator of a comma and at most one whitespace byte. That is
how the usual client writes a column (compact, or Python's ", "). Anything else (an escape, a null,
a nested value, pretty-printed arrays, text that is not UTF-8) gets None, and the caller decodes
that column into Python strings as before, whose checks give the usual errors.
"""
import numpy as np

from netfab.serve.columns import ByteSlices

QUOTE, OPEN, CLOSE = ord('"'), ord("["), ord("]")
# The bytes that may stand between two strings of a flat array, given valid JSON and at most two of them.
SEPARATOR = np.zeros(256, dtype=bool)
SEPARATOR[list(b", \t\n\r")] = True


def string_slices(raw) -> ByteSlices | None:
    """The strings of a JSON array given as `raw` (a msgspec.Raw), as slices of its text; None
    unless it is a flat array of strings without escapes, written as above."""
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
    if not len(closes) or len(opens) != len(closes) or opens[0] != 1 or closes[-1] != len(text) - 2:
        return None
    # Between two strings, one byte: a comma, as the JSON is valid. Two: a comma and whitespace,
    # checked. Three or more could hide another value (,1, or ,null,): left to msgspec.
    gaps = opens[1:] - closes[:-1]
    if not (gaps == 2).all() and not (((gaps == 2) | (gaps == 3)).all() and SEPARATOR[codes[closes[:-1] + 1]].all()
                                      and SEPARATOR[codes[opens[1:] - 1]].all()):
        return None
    return ByteSlices(text, opens + 1, closes - opens - 1)
