"""OIP v2 tensors into the model's columns, without a server: the same columns as REST's columnar
form, every BYTES layout read exactly, and each malformed tensor named in its error."""
import random
import struct

import numpy as np
import orjson
import pytest

from netfab.serve import oip_tensors
from netfab.serve.columns import ByteSlices
from netfab.serve.inputs import FeatureSchema, InputError
from netfab.serve.oip_tensors import byte_elements, columns_from_inputs, output_tensor
from tests.helpers import fixture_rows

FEATURES = {"country": "string", "title": "string", "device": "string", "price": "number", "rating": "number"}
MEANS = {"price": 120.5, "rating": 4.25}


@pytest.fixture
def schema():
    return FeatureSchema(FEATURES, MEANS)


def byte_tensor(values: list) -> bytes:
    """The extension's BYTES layout: a 4-byte little-endian length, then the bytes, per element."""
    encoded = [v.encode() if isinstance(v, str) else v for v in values]
    return b"".join(struct.pack("<I", len(v)) + v for v in encoded)


def binary_request(columns: dict, kinds: dict) -> tuple[bytes, int]:
    """A body as tritonclient sends it: the JSON header, then each input's bytes in order."""
    inputs, data = [], []
    for name, values in columns.items():
        raw = byte_tensor(values) if kinds[name] == "string" else np.asarray(values, dtype="<f4").tobytes()
        inputs.append({"name": name, "datatype": "BYTES" if kinds[name] == "string" else "FP32",
                       "shape": [len(values)], "parameters": {"binary_data_size": len(raw)}})
        data.append(raw)
    header = orjson.dumps({"inputs": inputs})
    return header + b"".join(data), len(header)


def decode(schema, body: bytes, header_length: int | None):
    inputs = orjson.loads(body if header_length is None else body[:header_length])["inputs"]
    return columns_from_inputs(schema, inputs, body, header_length)


def as_values(column) -> list:
    return column.tolist() if isinstance(column, ByteSlices) else column.tolist()


# --- the same columns as REST ------------------------------------------------------------------
def test_json_and_binary_tensors_give_rest_columns(schema):
    rows = fixture_rows(60)
    rows[3].update(device=None, rating=None)  # nulls: "" and the training mean, as in REST
    rest = schema.columns_from_inputs({name: [row[name] for row in rows] for name in FEATURES})
    json_body = orjson.dumps({"inputs": [
        {"name": name, "datatype": "BYTES" if kind == "string" else "FP32", "shape": [len(rows)],
         "data": [row[name] for row in rows]} for name, kind in FEATURES.items()]})
    filled = {name: [MEANS[name] if row[name] is None else row[name] for row in rows] if kind == "number" else
              ["" if row[name] is None else row[name] for row in rows] for name, kind in FEATURES.items()}
    for body, header_length in ((json_body, None), binary_request(filled, FEATURES)):
        columns, count = decode(schema, body, header_length)
        assert count == len(rows) and list(columns) == list(FEATURES)
        for name in FEATURES:
            assert as_values(columns[name]) == rest[name].tolist(), name
            if FEATURES[name] == "number":
                assert columns[name].dtype == np.float32
    assert isinstance(columns["title"], np.ndarray)  # a small request's strings: numpy, quicker for TensorFlow


def test_a_large_requests_binary_strings_stay_in_the_body(schema):
    rows = fixture_rows(300)
    columns = {name: [MEANS[name] if row[name] is None else row[name] for row in rows] if kind == "number" else
               ["" if row[name] is None else row[name] for row in rows] for name, kind in FEATURES.items()}
    decoded, _ = decode(schema, *binary_request(columns, FEATURES))
    assert isinstance(decoded["title"], ByteSlices) and decoded["title"].tolist() == columns["title"]


def test_inputs_the_model_does_not_take_are_skipped_with_their_bytes(schema):
    rows = fixture_rows(5)
    columns = {"impression_id": [row["impression_id"] for row in rows],
               **{name: [row[name] or 0.0 if kind == "number" else row[name] or "" for row in rows]
                  for name, kind in FEATURES.items()}}
    body, header_length = binary_request(columns, {**FEATURES, "impression_id": "string"})
    decoded, _ = decode(schema, body, header_length)
    assert as_values(decoded["country"]) == columns["country"]


# --- BYTES: every layout read exactly -------------------------------------------------------------
def random_element(draw: random.Random) -> bytes:
    """Codes, empty strings, text of every length class (a length's bytes: 1, 2, with zeros), raw bytes."""
    kind = draw.randrange(5)
    if kind == 0:
        return draw.choice([b"", b"DE", b"mobile", b"desktop", "é".encode()])
    if kind == 1:
        return bytes(draw.choice(b"abc \x00") for _ in range(draw.choice([1, 127, 128, 255, 256, 300])))
    if kind == 2:
        return draw.randbytes(draw.randrange(40))  # zeros and anything else, as a BYTES tensor may hold
    return " ".join(draw.choice(["Charming", "villa", "in", "basement", "über"]) for _ in range(draw.randrange(8))
                    ).encode()


@pytest.fixture(params=["C", "numpy"])
def reader(request, monkeypatch):
    """byte_elements as built (byte_elements.c), and as read in numpy without a C compiler."""
    if request.param == "numpy":
        monkeypatch.setattr(oip_tensors, "_byte_elements", None)
    return request.param


def test_the_c_reader_is_built():
    assert oip_tensors._byte_elements is not None, (
        "netfab/serve/byte_elements.c was not built: setup.py builds it at install (optional, so an install "
        "without a C compiler goes on); install one (Debian: gcc) and run pip install -e . again")


def test_the_c_reader_refuses_what_is_not_its_to_read():
    read = oip_tensors._byte_elements.read
    tensor = byte_tensor(["DE", "NL"])
    found = np.empty((2, 2), dtype=np.int64)
    assert read(tensor, 0, len(tensor), 2, found) and found.tolist() == [[4, 10], [2, 2]]
    assert not read(tensor, 0, len(tensor), 1, found)  # bytes left over
    assert not read(struct.pack("<I", 2**32 - 1) + b"DE", 0, 6, 1, found)  # a length past the end, not wrapped
    with pytest.raises(ValueError, match="within the buffer"):
        read(tensor, 4, len(tensor), 2, found)
    with pytest.raises(ValueError, match="2 x count"):
        read(tensor, 0, len(tensor), 3, found)
    with pytest.raises(ValueError, match="2 x count"):
        read(tensor, 0, len(tensor), 2**62, found)  # a count whose size in bytes would overflow
    with pytest.raises(TypeError):
        read(tensor, 0, len(tensor), 2, found.astype(np.int32).tobytes())  # not writable


def test_byte_elements_find_each_element_whatever_the_lengths(reader):
    for seed in range(500):
        draw = random.Random(seed)
        elements = [random_element(draw) for _ in range(draw.randint(1, 60))]
        if draw.random() < 0.3:
            elements = elements[:1] * len(elements)  # one width: the fixed-width reading
        prefix = draw.randbytes(draw.randrange(8))
        tensor = byte_tensor(elements)
        buffer = prefix + tensor + b"tail"  # the tensor sits inside a body
        starts, lengths = byte_elements(buffer, len(prefix), len(tensor), len(elements), "x")
        assert [buffer[s:s + n] for s, n in zip(starts.tolist(), lengths.tolist())] == elements, f"seed {seed}"
        walked = oip_tensors._walk(buffer, len(prefix), len(tensor), len(elements), "x")  # the last resort
        assert walked == (starts.tolist(), lengths.tolist()), f"seed {seed}"


@pytest.mark.parametrize("elements", [["DE"] * 50, ["mobile", "", "desktop"] * 40,
                                      [row["title"] for row in fixture_rows(500)], ["é", "ü"] * 7])
def test_usual_columns_are_read_without_a_walk(elements, reader, monkeypatch):
    def no_walk(*args):
        raise AssertionError("walked element by element")

    monkeypatch.setattr(oip_tensors, "_walk", no_walk)
    tensor = byte_tensor(elements)
    starts, lengths = byte_elements(tensor, 0, len(tensor), len(elements), "x")
    assert [tensor[s:s + n].decode() for s, n in zip(starts.tolist(), lengths.tolist())] == elements


@pytest.mark.parametrize("tensor, count, words", [
    (byte_tensor(["DE", "NL"]), 3, ["holds only 2 elements", "shape says 3"]),
    (byte_tensor(["DE", "NL"]), 10**12, ["its 12 bytes (binary_data_size) cannot hold the 1000000000000 elements"]),
    (byte_tensor(["DE", "NL"]) + b"\x01", 2, ["1 bytes are left", "2 elements"]),
    (byte_tensor(["DE"]) + struct.pack("<I", 99) + b"NL", 2, ["element 1: length 99", "only 2"]),
    (byte_tensor(["DE"]) + b"\x02\x00", 2, ["ends inside the length of element 1"]),
], ids=["too-few", "shape-beyond-the-bytes", "left-over", "length-overruns", "cut-length"])
def test_malformed_bytes_name_the_element(tensor, count, words, reader):
    with pytest.raises(InputError) as error:
        byte_elements(tensor, 0, len(tensor), count, "country")
    assert all(word in str(error.value) for word in words + ["input 'country'"]), error.value


@pytest.mark.parametrize("count", [4, 200], ids=["walked", "numpy"])
def test_strings_must_be_utf8(schema, count):
    rows = fixture_rows(count)
    columns = {name: [row[name] or 1.0 if kind == "number" else row[name] or "" for row in rows]
               for name, kind in FEATURES.items()}
    columns["title"][:4] = ["Café déjà vu", "ok", "x" * 200, "naïve"]  # not ASCII, lengths over 127: fine
    decoded, _ = decode(schema, *binary_request(columns, FEATURES))
    assert as_values(decoded["title"]) == columns["title"]
    for bad in (b"\xff\xfe", "é".encode()[:1], "é".encode()[1:]):  # not UTF-8, a cut character, a lone continuation
        columns["title"][2] = bad
        with pytest.raises(InputError, match="input 'title', element 2: not UTF-8 text"):
            decode(schema, *binary_request(columns, FEATURES))


# --- errors name the input and what to send ------------------------------------------------------
def test_binary_nan_is_refused_naming_the_training_mean_and_infinity_too(schema):
    rows = fixture_rows(3)
    columns = {name: [row[name] or 1.0 if kind == "number" else row[name] or "" for row in rows]
               for name, kind in FEATURES.items()}
    columns["price"][1] = float("nan")
    with pytest.raises(InputError, match=r"input 'price', element 1: NaN .* training mean, 120.5"):
        decode(schema, *binary_request(columns, FEATURES))
    columns["price"][1] = float("inf")
    with pytest.raises(InputError, match="input 'price', element 1: inf is not a finite float32"):
        decode(schema, *binary_request(columns, FEATURES))


def tensors(count=2, **changes) -> list:
    inputs = [{"name": name, "datatype": "BYTES" if kind == "string" else "FP32", "shape": [count],
               "data": ["x"] * count if kind == "string" else [1.0] * count} for name, kind in FEATURES.items()]
    for tensor in inputs:
        tensor.update(changes.get(tensor["name"], {}))
    return inputs


@pytest.mark.parametrize("inputs, words", [
    ([], ['"inputs" must be a non-empty list', "country BYTES"]),
    (tensors()[1:], ["missing input 'country' (BYTES)", "the model takes country BYTES"]),
    (tensors(price={"datatype": "FP64"}), ["input 'price': datatype 'FP64'", "send datatype FP32"]),
    (tensors(country={"datatype": "FP32"}), ["input 'country'", "strings", "send datatype BYTES"]),
    (tensors(price={"shape": [2, 1]}), ["input 'price': shape [2, 1]", "send shape [rows]"]),
    (tensors(price={"shape": [3], "data": [1, 2, 3]}), ["inputs differ in shape", "price [3]", "country [2]"]),
    (tensors(price={"data": [1.0]}), ["input 'price': shape [2] but data holds 1 values"]),
    (tensors(price={"data": [1.0, "two"]}), ["row 1, field 'price': expected a number, got a string"]),
    (tensors(rating={"data": [1.0, 1e300]}), ["row 1, field 'rating'", "not a finite float32"]),
    (tensors() + tensors()[:1], ["input 'country' is sent twice"]),
    (tensors(price={"data": None}), ["input 'price': shape [2] but data holds NoneType"]),
    (tensors(title={"parameters": {"binary_data_size": 8}}), ["Inference-Header-Content-Length"]),
    (tensors(title={"parameters": {"shared_memory_region": "r"}}), ["shared memory is not supported"]),
], ids=["none", "missing", "fp64", "bytes-as-fp32", "shape-2d", "shapes-differ", "short-data", "wrong-type",
        "beyond-float32", "twice", "data-not-a-list", "binary-without-header", "shared-memory"])
def test_bad_json_tensors_are_named(schema, inputs, words):
    with pytest.raises(InputError) as error:
        columns_from_inputs(schema, inputs, b"", None)
    assert all(word in str(error.value) for word in words), error.value


def test_binary_sizes_must_add_up_to_the_bytes_sent(schema):
    rows = fixture_rows(3)
    columns = {name: [row[name] or 1.0 if kind == "number" else row[name] or "" for row in rows]
               for name, kind in FEATURES.items()}
    body, header_length = binary_request(columns, FEATURES)
    with pytest.raises(InputError, match="the binary data after the JSON header is .* add up to"):
        decode(schema, body + b"\x00", header_length)
    header = orjson.loads(body[:header_length])
    header["inputs"][3]["parameters"]["binary_data_size"] = 8  # price: 3 rows take 12 bytes
    header["inputs"][4]["parameters"]["binary_data_size"] += 4
    new_header = orjson.dumps(header)
    with pytest.raises(InputError, match=r"input 'price': parameters.binary_data_size is 8 bytes, but shape \[3\]"):
        decode(schema, new_header + body[header_length:], len(new_header))


def test_scores_go_back_as_json_data_or_little_endian_bytes():
    scores = np.array([0.25, 0.5], dtype=np.float32)
    tensor, data = output_tensor("probability", scores, binary=False)
    assert data == b"" and orjson.loads(orjson.dumps(tensor, option=orjson.OPT_SERIALIZE_NUMPY))["data"] == [0.25, 0.5]
    tensor, data = output_tensor("probability", scores, binary=True)
    assert tensor == {"name": "probability", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}}
    assert np.frombuffer(data, dtype="<f4").tolist() == [0.25, 0.5]
