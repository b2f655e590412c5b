"""A model zip's SavedModel scoring raw columns: how the train wing scores a zip (fab optimize,
fab evaluate, fab drift), through the same signature fab serve calls, without importing serving.

    from netfab.train.zip_scores import score_saved_model
    folder = package.extract(tmp)                              # an opened, verified ModelZip
    scores = score_saved_model(folder / "saved_model", split.columns)   # float64 [rows]

Columns the signature does not take (another model's features, a slice column) are left out.
"""
from pathlib import Path

import numpy as np

from netfab import model_zip

SCORE_BATCH = 4096  # rows per SavedModel call: bounded tensors however many rows are scored


def score_saved_model(saved_model: Path, columns: dict[str, np.ndarray]) -> np.ndarray:
    """The probability the SavedModel at `saved_model` gives each row of raw `columns`."""
    import tensorflow as tf

    function = tf.saved_model.load(str(saved_model)).signatures[model_zip.SERVING_SIGNATURE]
    names = list(function.structured_input_signature[1])
    rows = len(next(iter(columns.values())))
    scores = [function(**{name: tf.constant(columns[name][start:start + SCORE_BATCH]) for name in names})
              [model_zip.SERVING_OUTPUT].numpy().ravel() for start in range(0, rows, SCORE_BATCH)]
    return np.concatenate(scores).astype(np.float64) if scores else np.zeros(0)
