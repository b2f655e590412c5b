"""A large JSON body's string columns read as slices of their text (netfab.serve.json_strings), and
FeatureSchema.decode's use of it: the same columns and the same errors as Python strings give.
No TensorFlow here: FeatureSchema is built by hand, as from_signature would build it."""
import json
import random

import msgspec
import numpy as np
import pytest

from netfab.serve import inputs
from netfab.serve.columns import ByteSlices
from netfab.serve.inputs import NUMBER, STRING, FeatureSchema, InputError
from netfab.serve.json_strings import string_slices

RAW = msgspec.json.Decoder(msgspec.Raw)
ALPHABET = ['a', 'Z', '7', ' ', ',', '[', ']', ':', '{', '}', 'é', '中', '\n', '"', '\\', '\t', '/', '\u2028']


def _array_text(draw: random.Random) -> bytes:
    """A JSON array as clients write it: strings (some with escapes), now and then a null, a number,
    a nested array or an object; compact, Python's ", ", or indented."""
    values = []
    for _ in range(draw.randint(0, 12)):
        kind = draw.random()
        if kind < 0.85:
            values.append("".join(draw.choice(ALPHABET[:12] if draw.random() < 0.8 else ALPHABET)
                                  for _ in range(draw.randint(0, 8))))
        else:
            values.append(draw.choice([None, 1, 2.5, ["x"], {"k": "v"}, [], True]))
    style = draw.choice([{"separators": (",", ":")}, {}, {"indent": 1}, {"separators": (" ,", ":")}])
    return json.dumps(values, ensure_ascii=draw.random() < 0.5, **style).encode()


def test_slices_are_the_strings_json_reads_exactly_when_the_array_holds_plain_strings_and_nulls():
    for seed in range(2000):
        draw = random.Random(seed)
        text = _array_text(draw)
        values = json.loads(text)
        plain = (b"\\" not in text and any(isinstance(v, str) for v in values)
                 and all(v is None or isinstance(v, str) for v in values))
        slices = string_slices(RAW.decode(text))
        assert (slices is not None) == plain, f"seed {seed}: {text!r}"
        if plain:
            assert slices.tolist() == ["" if v is None else v for v in values], f"seed {seed}: {text!r}"


@pytest.mark.parametrize("text, expected", [
    (b'["a","b"]', ["a", "b"]), (b'["a", "b"]', ["a", "b"]), (b'[\n  "a",\n  "b"\n]', ["a", "b"]),
    (b'["a",null,"b"]', ["a", "", "b"]), (b'[null, "a", null, null]', ["", "a", "", ""]),
    (b'["",""]', ["", ""]), (b'["\xc3\xa9t\xc3\xa9"]', ["\u00e9t\u00e9"])])
def test_plain_strings_and_nulls_are_read_in_any_layout(text, expected):
    assert string_slices(RAW.decode(text)).tolist() == expected


@pytest.mark.parametrize("text", [b'["a",1,"b"]', b'["a",["b"],"c"]', b'[["a"],["b"]]', b'["a",[],"b"]',
                                  b'["a",{"b":"c"}]', b'["a",true]', b'["a\\"b"]', b'["\\u00e9"]', b'[]',
                                  b'[null,null]', b'"abc"', b'["\xff"]', b'[1,2]', b'["a",null,[null]]'])
def test_anything_but_a_flat_array_of_plain_strings_is_left_to_msgspec(text):
    try:
        raw = RAW.decode(text)
    except msgspec.DecodeError:  # not JSON at all: msgspec refuses it before this reader sees it
        return
    assert string_slices(raw) is None


@pytest.fixture
def schema():
    return FeatureSchema({"country": STRING, "title": STRING, "price": NUMBER}, {"price": 100.0})


def _body(columns: dict, **dumps) -> bytes:
    return json.dumps({"inputs": columns}, **dumps).encode()


def _rows(count: int, countries=("DE", "FR", "IT")) -> dict:
    return {"country": list(countries) * (count // 3), "title": [f"room {i}, sea view" for i in range(count // 3 * 3)],
            "price": [float(i) for i in range(count // 3 * 3)]}


@pytest.mark.parametrize("countries, dumps", [(("DE", "FR", "IT"), {}),  # Python's ", "
                                              (("DE", "FR", "IT"), {"separators": (",", ":")}),
                                              (("DE", "中国", "Österreich"), {"ensure_ascii": False})])
def test_a_large_columnar_body_gives_the_columns_python_strings_give(schema, countries, dumps):
    body = _body(_rows(3000, countries), **dumps)
    assert len(body) >= inputs.RAW_STRINGS_MIN_BYTES
    columns, row_form = schema.decode(body)
    expected = schema.columns_from_inputs(json.loads(body)["inputs"])
    assert not row_form
    for name in ("country", "title"):
        assert isinstance(columns[name], ByteSlices)
        assert columns[name].tolist() == expected[name].tolist()
    np.testing.assert_array_equal(columns["price"], expected["price"])


def test_a_large_body_with_nulls_escapes_or_rows_decodes_as_before(schema):
    values = _rows(3000)
    values["country"][5] = None
    values["title"][7] = 'the "best" room\n'
    columns, _ = schema.decode(_body(values))
    assert isinstance(columns["country"], ByteSlices) and columns["country"][[4, 5, 6]].tolist() == ["FR", "", "DE"]
    assert isinstance(columns["title"], np.ndarray) and columns["title"][7] == 'the "best" room\n'  # an escape
    rows = [dict(zip(values, row)) for row in zip(*values.values())]
    columns, row_form = schema.decode(json.dumps({"instances": rows}).encode())
    assert row_form and columns["title"].tolist() == values["title"]
    columns, row_form = schema.decode(json.dumps({"instances": None, "inputs": values}).encode())
    assert not row_form and columns["title"].tolist() == values["title"]
    assert schema.decode(json.dumps({"instances": rows, "inputs": values}).encode()) is None  # one form only


def test_a_bad_value_in_a_large_body_gets_the_careful_error(schema):
    from netfab.serve.app import parse_body

    values = _rows(3000)
    values["country"][4] = {"not": "a string"}
    body = _body(values)
    assert schema.decode(body) is None  # the careful way names the row and the field
    with pytest.raises(InputError, match="row 4, field 'country': expected a string"):
        schema.columns_from_inputs(parse_body(body)["inputs"])
    values = _rows(3000)
    values["title"] = values["title"][:-1]
    assert schema.decode(_body(values)) is None  # lists of different lengths


def test_text_that_is_not_utf8_is_left_to_the_usual_decoding(schema):
    body = _body(_rows(3000)).replace("room 5,".encode(), b"r\xffom 5,")
    assert schema.decode(body) is None  # msgspec's str decoding refuses it; the careful way names it
