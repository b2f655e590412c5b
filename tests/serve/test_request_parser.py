"""The compiled request parser: the same columns as the careful path for every body it takes,
None for every body it does not, and never a crash on any bytes (truncated, mutated, random)."""
import json
import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netfab.serve.columns import ByteSlices, concatenate
from netfab.serve.inputs import FeatureSchema
from tests.helpers import fixture_rows

FEATURES = {"country": "string", "title": "string", "price": "number", "nights": "number"}
FILL = {"price": 100.0, "nights": 2.0}


@pytest.fixture(scope="module")
def parser():
    from netfab.serve.request_parser import BodyParser, compile_now

    compile_now()  # ~55 s on a fresh checkout, then from numba's cache (the servers below load it)
    return BodyParser(FEATURES, FILL)


@pytest.fixture(scope="module")
def schema():
    return FeatureSchema(FEATURES, FILL)


def careful(schema, body: bytes):
    """The columns of the careful path (json + checks), or None where it raises."""
    from netfab.serve.app import parse_body
    from netfab.serve.inputs import InputError

    try:
        payload = parse_body(body)
        if "instances" in payload:
            return schema.columns_from_rows(payload["instances"])
        return schema.columns_from_inputs(payload["inputs"])
    except (InputError, TypeError, KeyError, AttributeError):
        return None


def assert_same(parsed, expected):
    assert parsed.columns.keys() == expected.keys()
    for name, column in parsed.columns.items():
        if isinstance(column, ByteSlices):
            assert column.tolist() == list(expected[name]), name
        else:
            assert column.dtype == np.float32
            np.testing.assert_array_equal(column, expected[name], err_msg=name)


def columnar(rows):
    return {name: [row[name] for row in rows] for name in rows[0]}


def test_fixture_rows_in_both_forms_give_the_careful_columns(parser, schema):
    rows = fixture_rows(300)
    rows[5].update(country=None, price=None, title="Café “Zürich” ☕ 🏨")  # nulls, UTF-8 of 2, 3, 4 bytes
    rows[6].update(price=1e-7, nights=12345678901234567890)  # a small exponent; a mantissa beyond 2^53
    rows[7].update(price=0.30000000000000004, nights=-0.0)  # 17 digits: Python's float() rounds it
    for body, row_form in ((orjson.dumps({"instances": rows}), True),
                           (orjson.dumps({"inputs": columnar(rows)}), False),
                           (json.dumps({"signature_name": "serving_default", "inputs": columnar(rows)},
                                       indent=2, ensure_ascii=False).encode(), False)):
        parsed = parser.parse(body)
        assert parsed is not None and parsed.row_form == row_form and parsed.rows == 300
        assert_same(parsed, careful(schema, body))
    assert parsed.columns["price"][5] == np.float32(100.0) and parsed.columns["country"].tolist()[5] == ""


@pytest.mark.parametrize("body", [
    b'{"instances": [{"country": "D\\u00e9", "title": "", "price": 1, "nights": 1}]}',  # an escape
    b'{"instances": [{"country": "DE", "title": "", "price": 1}]}',  # a missing feature
    b'{"instances": [{"country": "DE", "country": "FR", "title": "", "price": 1, "nights": 1}]}',
    b'{"instances": [{"country": 5, "title": "", "price": 1, "nights": 1}]}',  # a wrong type
    b'{"instances": [{"country": "DE", "title": "", "price": true, "nights": 1}]}',
    b'{"instances": [{"country": "DE", "title": "", "price": NaN, "nights": 1}]}',
    b'{"instances": [{"country": "DE", "title": "", "price": 1e39, "nights": 1}]}',  # beyond float32
    b'{"instances": [{"country": "DE", "title": "", "price": 01, "nights": 1}]}',  # not JSON
    b'{"instances": [{"country": "DE", "title": "", "price": 1, "nights": 1}]} x',
    b'{"instances": [{"country": "DE", "title": "", "price": 1, "nights": 1},]}',
    b'{"instances": []}', b'{"inputs": {}}', b'{}', b'[]', b'',
    b'{"inputs": {"country": ["DE"], "title": [""], "price": [1, 2], "nights": [1]}}',  # lengths differ
    b'{"inputs": {"country": ["DE"], "title": [""], "price": [1], "nights": [1]}, "instances": []}',
    b'{"signature_name": "other", "inputs": {"country": ["DE"], "title": [""], "price": [1], "nights": [1]}}',
    b'{"instances": [{"country": "\xff", "title": "", "price": 1, "nights": 1}]}',  # not UTF-8
], ids=["escape", "missing", "twice", "string-type", "number-type", "nan", "float32", "leading-zero",
        "trailing", "trailing-comma", "no-rows", "no-columns", "empty-object", "array", "empty",
        "lengths", "both-forms", "signature", "utf8"])
def test_bodies_it_cannot_read_exactly_go_the_careful_way(parser, body):
    assert parser.parse(body) is None


def test_other_keys_are_skipped_whatever_they_hold(parser, schema):
    body = (b'{"id": {"a": [1, {"b": "\\"x\\""}], "c": []}, "inputs": {"country": ["DE", null], '
            b'"extra": [[1, 2], {"k": null}, true, -1.5e-3], "title": ["a", "b"], "price": [1, 2.5], '
            b'"nights": [null, 3]}, "more": "\\u00e9"}')
    parsed = parser.parse(body)
    assert parsed is not None
    assert_same(parsed, careful(schema, body))


def reordered(rows):
    """The rows with their keys in another order each (a rotation), as clients may send them."""
    return [dict(list(row.items())[i:] + list(row.items())[:i]) for i, row in enumerate(rows, 2)]


@pytest.mark.parametrize("body", [orjson.dumps({"instances": fixture_rows(3)}),
                                  orjson.dumps({"inputs": columnar(fixture_rows(3))}),
                                  json.dumps({"instances": reordered(fixture_rows(3))}).encode()],
                         ids=["rows", "columns", "rows-reordered-spaced"])
def test_every_truncation_and_mutation_of_a_body_is_read_exactly_or_refused(parser, schema, body):
    rng = np.random.default_rng(7)
    bodies = [body[:cut] for cut in range(len(body))]
    for _ in range(3000):
        mutated = bytearray(body)
        for position in rng.integers(0, len(body), rng.integers(1, 4)):
            mutated[position] = int(rng.choice(list(b'{}[]",:0123456789.eE-+ \\nulltrue\x00\xc3\xff')))
        bodies.append(bytes(mutated))
    for candidate in bodies:
        parsed = parser.parse(candidate)
        if parsed is not None:
            assert_same(parsed, careful(schema, candidate))


NUMBERS = ["0", "-0", "0.0", "-0.50", "7", "12.25", "-3.1", "00", "01", "-01", "00.5", "1.", "-", "-.5", ".5",
           "1.5.2", "1e5", "1E-3", "1.5e+2", "2e", "123456789012345", "1234567890123456", "12345678.9012345",
           "1234567.890123456", "0.000000000000001", "0.0000000000000001", "0.1234567890123456789",
           "9007199254740993", "1e400", "3.5e38", "--1", "+1", "1x", "null", "nul", "true", '"1"', "[1]", "1 "]
STRINGS = ['"DE"', '""', '" "', '"a b!~"', '"\x7f"', '"#$"', '"Caf\\u00e9"', '"é"', '"\\""', 'null', 'nul',
           '"a', '"a"b', "5", '"\x1f"', "[]"]


def assert_read_exactly_or_refused(parser, schema, bodies):
    for candidate in bodies:
        parsed, expected = parser.parse(candidate), careful(schema, candidate)
        if parsed is not None:
            assert_same(parsed, expected)
        else:  # refused: the careful way refuses too, or the body holds an escape
            assert expected is None or b"\\" in candidate, candidate


@pytest.mark.parametrize("separator", [",", ", ", " ,", ",\n\t", " , "])
def test_each_spelling_of_a_column_value_is_read_exactly_or_refused(parser, schema, separator):
    """The column loops and skip_value read the usual values themselves: every other spelling,
    wherever it is in a list and whatever the separators, must still be read as the careful way
    reads it."""
    def body(country='["x", "y"]', price="[1, 2]", extra="[]"):
        return (f'{{"inputs": {{"country": {country}, "title": ["t"{separator}"u"], "price": {price}, '
                f'"extra": {extra}, "nights": [1{separator}2]}}}}').encode()

    bodies = [body(country=f'["x"{separator}{s}]') for s in STRINGS]
    bodies += [body(country=f'[{s}{separator}"x"]') for s in STRINGS]
    bodies += [body(price=f"[{n}{separator}1]") for n in NUMBERS]
    bodies += [body(price=f"[1{separator}{n}]") for n in NUMBERS]
    bodies += [body(extra=f'[{v}{separator}"x"]') for v in STRINGS + NUMBERS]
    bodies += [body(extra=f"[1{separator}{v}]") for v in STRINGS + NUMBERS]
    assert_read_exactly_or_refused(parser, schema, bodies)


KEYS = ["id", "", "pric", "prices", "price ", "Price", "pr\\u0069ce", "pr\\ice", "é", "\x1f", "\x7f", 'a"b', "country"]


@pytest.mark.parametrize("separator", [",", ", ", " ,", ",\n\t", " , "])
@pytest.mark.parametrize("colon", [":", ": ", " :", ":\n\t"])
def test_each_spelling_of_a_row_key_and_value_is_read_exactly_or_refused(parser, schema, separator, colon):
    """rows_form reads the usual keys and values itself, and tries the keys in the last row's
    order first: every other spelling and order must still be read as the careful way reads it."""
    def row(country='"x"', price="1", extra="[]", key="id", order=("country", "title", "extra", "price", "nights")):
        values = {"country": country, "title": '"t"', "price": price, "extra": extra, "nights": "2"}
        pad = separator.replace(",", "")  # whitespace inside the braces too
        items = separator.join(f'"{key if k == "extra" else k}"{colon}{values[k]}' for k in order)
        return "{" + pad + items + pad + "}"

    def body(*rows):
        return f'{{"instances": [{separator.join(rows)}]}}'.encode()

    def both(**changed):  # the changed row first and after a plain one (whose order it breaks)
        return [body(row(**changed), row()), body(row(), row(**changed), row())]

    bodies = [b for s in STRINGS for b in both(country=s)]
    bodies += [b for n in NUMBERS for b in both(price=n)]
    bodies += [b for v in STRINGS + NUMBERS for b in both(extra=v)]
    bodies += [b for k in KEYS for b in both(key=k)]
    bodies += [b for order in (("nights", "price", "extra", "title", "country"), ("extra", "country", "title",
                                                                                   "price", "nights"))
               for b in both(order=order)]
    assert_read_exactly_or_refused(parser, schema, bodies)
    for order in (("country", "title", "price"), ("country", "title", "price", "nights", "price")):
        assert parser.parse(body(row(), row(order=order))) is None  # a feature missing, or twice


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
number = st.one_of(st.integers(-10**25, 10**25), st.floats(allow_nan=False, allow_infinity=False,
                                                            min_value=-3e38, max_value=3e38))
row = st.fixed_dictionaries({"country": st.one_of(st.none(), text), "title": st.one_of(st.none(), text),
                             "price": st.one_of(st.none(), number), "nights": st.one_of(st.none(), number)},
                            optional={"id": st.one_of(text, number, st.lists(number, max_size=3))})


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=8), columns=st.booleans(), ascii_only=st.booleans())
def test_random_rows_are_read_like_the_careful_way(parser, schema, rows, columns, ascii_only):
    if columns:
        rows = [{name: row[name] for name in FEATURES} for row in rows]
        payload = {"inputs": columnar(rows)}
    else:
        payload = {"instances": rows}
    body = json.dumps(payload, ensure_ascii=ascii_only).encode()
    parsed, expected = parser.parse(body), careful(schema, body)
    if parsed is not None:
        assert_same(parsed, expected)
    elif expected is not None and "\\" not in body.decode():
        # Without escapes, only a number beyond float32 may be refused (the careful way names it).
        assert any(isinstance(v, (int, float)) and not math.isfinite(np.float32(v))
                   for r in rows for v in (r["price"], r["nights"]))


def test_byte_slices_concatenate_index_and_become_tensors():
    import tensorflow as tf

    a = {"s": ByteSlices(b'xx"DE"yy"FR"', np.array([3, 9]), np.array([2, 2])), "n": np.array([1.0, 2.0])}
    b = {"s": ByteSlices(b'"NL"', np.array([1]), np.array([2])), "n": np.array([3.0])}
    merged = concatenate([a, b])
    assert merged["s"].tolist() == ["DE", "FR", "NL"] and merged["n"].tolist() == [1.0, 2.0, 3.0]
    assert merged["s"][[2, 0]].tolist() == ["NL", "DE"]
    assert merged["s"].to_tensor().numpy().tolist() == [b"DE", b"FR", b"NL"]
    mixed = concatenate([a, {"s": np.array(["PL"], dtype=object), "n": np.array([4.0])}])
    assert mixed["s"].tolist() == ["DE", "FR", "PL"]
    assert tf.constant(mixed["s"]).dtype == tf.string
