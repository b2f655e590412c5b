"""Call an exported SavedModel on raw JSON rows, the way a server or a batch job does.

    python -m netfab.saved_model artifacts/deep_v1/<run>/model.zip data/fixtures/sanity_2k.json --rows 5

prints {"probability": [...]} for the first rows, using nothing but tf.saved_model.load:
`fab ci` runs it in a fresh process to prove the zip stands on its own.
"""
import argparse
import json
import sys
import tempfile

import numpy as np

from netfab import packaging


def load_serving_function(folder):
    """The serving_default signature of the SavedModel in `folder`."""
    import tensorflow as tf

    return tf.saved_model.load(str(folder)).signatures[packaging.SERVING_SIGNATURE]


def rows_to_tensors(rows: list[dict], function) -> dict:
    """Columns of raw values in the dtypes the signature declares (missing strings become "")."""
    import tensorflow as tf

    specs = function.structured_input_signature[1]
    tensors = {}
    for name, spec in specs.items():
        values = [row.get(name) for row in rows]
        if spec.dtype == tf.string:
            tensors[name] = tf.constant(["" if v is None else str(v) for v in values])
        else:
            tensors[name] = tf.constant([np.nan if v is None else v for v in values], spec.dtype)
    return tensors


def call_on_columns(function, columns: dict[str, np.ndarray]) -> np.ndarray:
    """Probabilities for numpy columns already in the signature's dtypes (netfab.serving_inputs).

    One call per batch, numpy arrays straight in: the server and `fab predict` convert rows to
    columns once, in bulk, instead of building a tf.constant per column per request here.
    """
    return function(**columns)[packaging.SERVING_OUTPUT].numpy()


def predict_rows(function, rows: list[dict]) -> np.ndarray:
    return function(**rows_to_tensors(rows, function))[packaging.SERVING_OUTPUT].numpy()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("zip")
    parser.add_argument("rows_file", help="newline-delimited JSON rows")
    parser.add_argument("--rows", type=int, default=5)
    args = parser.parse_args(argv)
    from data.loading import first_rows

    rows = first_rows(args.rows_file, args.rows)
    with tempfile.TemporaryDirectory(prefix="netfab-savedmodel-") as tmp:
        folder = packaging.extract_package(args.zip, tmp)
        scores = predict_rows(load_serving_function(folder / "saved_model"), rows)
    json.dump({"probability": scores.tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
