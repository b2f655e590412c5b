"""The exported SavedModel stands alone: plain tf.saved_model.load in a new process answers raw rows."""
import json
import subprocess
import sys

import numpy as np

from data.fixture import FIXTURE_PATH
from netfab import packaging
from tests.helpers import fixture_rows

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
    folder = packaging.extract_package(trained_zip, tmp_path / "unpacked")
    result = subprocess.run([sys.executable, "-c", PLAIN_TF, str(folder / "saved_model"), str(FIXTURE_PATH)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = np.array(json.loads(result.stdout))
    assert scores.shape == (6,) and ((scores > 0) & (scores < 1)).all()


def test_saved_model_takes_unseen_categories_and_agrees_with_keras(trained_zip, tmp_path):
    import keras
    from netfab.saved_model import load_serving_function, predict_rows

    folder = packaging.extract_package(trained_zip, tmp_path / "unpacked")
    rows = fixture_rows(5)
    rows[0].update(country="ZZ", item_id="item_never_seen", title="completely unknown words")
    served = predict_rows(load_serving_function(folder / "saved_model"), rows)
    keras_model = keras.saving.load_model(folder / "model.keras")
    columns = [i.name for i in keras_model.inputs]
    direct = keras_model.predict({c: np.array([r[c] for r in rows],
                                              dtype=object if isinstance(rows[0][c], str) else "float32")
                                  for c in columns}, verbose=0)
    assert np.isfinite(served).all()
    np.testing.assert_allclose(served, direct, atol=1e-6)
