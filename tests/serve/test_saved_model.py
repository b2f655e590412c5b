"""The exported SavedModel stands alone: plain tf.saved_model.load in a new process answers raw rows."""
import json
import subprocess
import sys

import numpy as np

from data.fixture import FIXTURE_PATH
from netfab import model_zip
from tests.helpers import fixture_rows, write_ndjson

PLAIN_TF = """
import json, sys
import tensorflow as tf
signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
rows = [json.loads(line) for line in open(sys.argv[2]).readlines()[:6]]
inputs = {}
for name, spec in signature.structured_input_signature[1].items():
    values = [row[name] if row.get(name) is not None else ("" if spec.dtype == tf.string else 0.0)
              for row in rows]
    inputs[name] = tf.constant(values, dtype=spec.dtype)
print(json.dumps(signature(**inputs)["probability"].numpy().tolist()))
"""


def test_saved_model_answers_raw_rows_in_a_fresh_process(trained_zip, tmp_path):
    folder = model_zip.ModelZip(trained_zip).extract(tmp_path / "unpacked")
    result = subprocess.run([sys.executable, "-c", PLAIN_TF, str(folder / "saved_model"), str(FIXTURE_PATH)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = np.array(json.loads(result.stdout))
    assert scores.shape == (6,) and ((scores > 0) & (scores < 1)).all()


def test_saved_model_takes_unseen_categories_and_agrees_with_keras(trained_zip, tmp_path):
    import models
    from netfab.serve.saved_model import load_serving_function, predict_rows

    folder = model_zip.ModelZip(trained_zip).extract(tmp_path / "unpacked")
    rows = fixture_rows(5)
    rows[0].update(country="ZZ", item_id="item_never_seen", title="completely unknown words")
    served = predict_rows(load_serving_function(folder / "saved_model"), rows)
    keras_model = models.load(folder / "model.keras")
    columns = [i.name for i in keras_model.inputs]
    direct = keras_model.predict({c: np.array([r[c] for r in rows],
                                              dtype=object if isinstance(rows[0][c], str) else "float32")
                                  for c in columns}, verbose=0)
    assert np.isfinite(served).all()
    np.testing.assert_allclose(served, direct, atol=1e-6)


def test_flat_caller_takes_the_fast_path_and_agrees_with_the_public_call(trained_zip, tmp_path):
    from netfab.serve.saved_model import FlatCaller, load_serving_function
    from netfab.serve.model import ServingModel

    folder = model_zip.ModelZip(trained_zip).extract(tmp_path / "unpacked")
    function = load_serving_function(folder / "saved_model")
    caller = FlatCaller(function)
    # The fast path uses TensorFlow internals: a TensorFlow upgrade that moves them must show here
    # (the caller would still answer, through the slow public call).
    assert caller.fast, "FlatCaller fell back to the public call: check it against this TensorFlow"
    rows = fixture_rows(300)
    columns = ServingModel.load(trained_zip).inputs.columns_from_rows(rows)
    public = function(**columns)[model_zip.SERVING_OUTPUT].numpy()
    np.testing.assert_array_equal(caller(columns), public)
    one = {name: column[:1] for name, column in columns.items()}
    np.testing.assert_allclose(caller(one), public[:1], atol=1e-6)
    # A lone request's call runs every op in the calling thread, with the same scores.
    np.testing.assert_allclose(caller(one, single_threaded=True), public[:1], atol=1e-6)
    assert caller.single_threaded_ok


def test_strings_given_as_slices_of_a_body_score_the_same_as_views_as_copies_and_as_text(trained_zip):
    """ByteSlices (binary OIP tensors, large JSON bodies) reach the model as views of the body
    (netfab/serve/string_views.c), or as copies without the op: the scores of the plain columns."""
    from netfab.serve.columns import ByteSlices
    from netfab.serve.model import ServingModel

    model = ServingModel.load(trained_zip)
    caller = model._call
    assert caller._views is not None, "the string views op was not loaded (test_string_views.py says why)"
    columns = model.inputs.columns_from_rows(fixture_rows(300))
    sliced = {}
    for name, column in columns.items():
        if column.dtype == object:  # a string column: its values laid one after another in a "body"
            encoded = [b"<>" + value.encode() for value in column.tolist()]  # a gap before each value
            ends = np.cumsum([len(value) for value in encoded])
            lengths = np.array([len(value) - 2 for value in encoded], dtype=np.int64)
            sliced[name] = ByteSlices(b"".join(encoded), ends - lengths, lengths)
        else:
            sliced[name] = column
    expected = caller(columns)
    for fast in (True, False):  # the flat call, and the public call it falls back to
        caller.fast = fast
        np.testing.assert_array_equal(caller(sliced), expected)
        views, caller._views = caller._views, None
        np.testing.assert_array_equal(caller(sliced), expected)
        caller._views = views


def test_text_is_computed_once_per_distinct_title_with_the_same_scores(trained_zip):
    """Rows sharing a title share the text branch's result; the score of a row depends on it alone."""
    from netfab.serve.model import ServingModel

    model = ServingModel.load(trained_zip)
    rows = fixture_rows(200)
    columns = model.inputs.columns_from_rows(rows)
    together = model.predict(columns)
    alone = np.concatenate([model.predict({n: c[i:i + 1] for n, c in columns.items()}) for i in range(0, 200, 7)])
    np.testing.assert_allclose(together[::7], alone, atol=1e-6)
    assert len(set(columns["title"])) < len(rows)  # the fixture repeats titles, as real items do


def test_the_standalone_check_gives_a_null_number_its_training_mean(trained_zip, tmp_path):
    # python -m netfab.serve.saved_model (what fab ci runs on a fresh zip) fills nulls as fab serve does
    rows = fixture_rows(4)
    rows[1]["price"] = None
    write_ndjson(tmp_path / "rows.json", rows)
    result = subprocess.run([sys.executable, "-m", "netfab.serve.saved_model", str(trained_zip), str(tmp_path / "rows.json"),
                             "--rows", "4"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads(result.stdout)["probability"]
    from netfab.serve.saved_model import load_serving_function, predict_rows

    with model_zip.ModelZip(trained_zip) as package:
        mean = package.json("dataset_metadata.json")["numeric"]["price"]["mean"]
        function = load_serving_function(package.extract(tmp_path / "unpacked") / "saved_model")
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores[1], predict_rows(function, [dict(rows[1], price=mean)])[0], atol=1e-6)
