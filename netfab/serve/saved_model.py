"""Call an exported SavedModel on raw JSON rows, the way a server or a batch job does.

    python -m netfab.serve.saved_model artifacts/deep_v1/<run>/model.zip data/fixtures/sanity_2k.json --rows 5

prints {"probability": [...]} (a model's one output: "value" for regression, a list per row
for multiclass and multilabel) for the first rows, using nothing but tf.saved_model.load and the
zip's dataset metadata (a null number gets its training mean, as fab serve and fab predict give
it): `fab ci` runs it in a fresh process to prove the zip stands on its own.
"""
import argparse
import contextlib
import json
import sys
import tempfile

import numpy as np

from netfab import model_zip
from netfab.serve.columns import ByteSlices

SINGLE_THREADED = "SINGLE_THREADED_EXECUTOR"  # TensorFlow's executor running every op in the calling thread


def load_serving_function(folder):
    """The serving_default signature of the SavedModel in `folder`."""
    import tensorflow as tf

    return tf.saved_model.load(str(folder)).signatures[model_zip.SERVING_SIGNATURE]


def serving_output(function) -> str:
    """The name of the signature's one output: "probability" or "value" (netfab/tasks.py)."""
    outputs = function.structured_outputs
    return model_zip.SERVING_OUTPUT if model_zip.SERVING_OUTPUT in outputs else next(iter(outputs))


def rows_to_tensors(rows: list[dict], function, numeric_fill: dict[str, float] | None = None) -> dict:
    from data.loading import category_string  # an integer or boolean category as its vocabulary holds it

    """Columns of raw values in the dtypes the signature declares: a missing string becomes "",
    a missing number its numeric_fill (the training mean, as fab serve and fab predict fill it;
    FeatureSchema.from_signature has them), or NaN without one."""
    import tensorflow as tf

    specs = function.structured_input_signature[1]
    fill = numeric_fill or {}
    tensors = {}
    for name, spec in specs.items():
        values = [row.get(name) for row in rows]
        if spec.dtype == tf.string:
            tensors[name] = tf.constant([category_string(v) for v in values])
        else:
            missing = fill.get(name, np.nan)
            tensors[name] = tf.constant([missing if v is None else v for v in values], spec.dtype)
    return tensors


class FlatCaller:
    """The serving signature called with flat tensors: a small fraction of the public call's Python.

    `function(**columns)` binds keywords, casts every argument against its TensorSpec and
    converts each column with tf.constant, which is most of the time of a one-row call. This
    calls the same graph (the signature's AtomicFunction) with tensors built directly from numpy
    arrays already in the signature's dtypes (netfab.serve.inputs guarantees them), and hands it
    to the eager runtime's execute as the public call finally does, with the call's attributes
    (executor, config) worked out once rather than per call: what the public path adds on the way
    (a context manager per executor switch, a copy of the call options, error interpolation,
    gradient-tape and graph-mode checks) is a good share of a small batch's call. These are
    TensorFlow internals, so the pinned TensorFlow version is checked by
    tests/serve/test_saved_model.py, and any other version falls back to the public call.
    """

    def __init__(self, function):
        from netfab.serve import string_views

        self._function = function
        # String columns given as ByteSlices become views of their request bodies, not copies:
        # _call keeps the bodies' tensors (buffers) until the call returns.
        self._views = string_views.load()
        self.single_threaded_ok = True  # until the executor refuses one of the graph's ops
        specs = function.structured_input_signature[1]
        try:
            from tensorflow.python import pywrap_tfe
            from tensorflow.python.eager import context, core
            from tensorflow.python.framework.ops import EagerTensor

            self.names = list(function.function_type.parameters)  # the order of the flat inputs
            self._dtypes = [specs[name].dtype.as_datatype_enum for name in self.names]
            atomic = function._inference_function
            self._name = atomic.name.decode() if isinstance(atomic.name, bytes) else atomic.name
            self._outputs = len(atomic.function_type.flat_outputs)
            self._captured = list(function.captured_inputs)  # variables and lookup tables
            # flat outputs follow tf.nest order: a dict's keys sorted
            self._output = sorted(function.structured_outputs).index(serving_output(function))
            self._device = "/job:localhost/replica:0/task:0/device:CPU:0"  # inputs start on the host
            self._tensor = EagerTensor
            self._context = context.context()
            # The attributes the public call passes: the context's config (its thread counts are
            # set before the first op, so they hold from here on) and the executor.
            options = self._context.function_call_options.as_attrs()
            self._attrs = {single: ("executor_type", SINGLE_THREADED if single else options["executor_type"],
                                    "config_proto", options["config_proto"]) for single in (False, True)}
            self._execute = pywrap_tfe.TFE_Py_Execute
            self._failed, self._as_exception = core._NotOkStatusException, core._status_to_exception
            self.fast = True
        except (AttributeError, ImportError, KeyError, ValueError):
            self.fast = False

    def __call__(self, columns: dict, single_threaded: bool = False) -> np.ndarray:
        """Probabilities for numpy columns, ByteSlices or tensors, in the signature's dtypes.

        single_threaded: TensorFlow runs the ops one after another in this thread instead of
        handing them to its inter-op threads: for a few rows, no hand-overs and no wake-ups.
        """
        if single_threaded and self.single_threaded_ok:
            import tensorflow as tf

            try:
                return self._call(columns, True)
            except (tf.errors.FailedPreconditionError, tf.errors.UnimplementedError):
                self.single_threaded_ok = False  # the graph has loops (rnn_v1), which this executor cannot run
        return self._call(columns, False)

    def _call(self, columns: dict, single_threaded: bool) -> np.ndarray:
        buffers = {}  # the request bodies of ByteSlices columns, each copied into TensorFlow once,
        # and alive until the call returns: the string views point into them
        if not self.fast:
            import tensorflow as tf

            columns = {name: value.to_tensor(buffers, self._views) if isinstance(value, ByteSlices) else value
                       for name, value in columns.items()}
            executor = tf.experimental.function_executor_type(SINGLE_THREADED) if single_threaded else \
                contextlib.nullcontext()
            with executor:
                return self._function(**columns)[serving_output(self._function)].numpy()
        flat = [self._tensor(value, self._device, dtype) if isinstance(value, np.ndarray) else
                value.to_tensor(buffers, self._views) if isinstance(value, ByteSlices) else value
                for value, dtype in zip(map(columns.__getitem__, self.names), self._dtypes)]
        context = self._context
        try:
            outputs = self._execute(context._handle, context.device_name, self._name, flat + self._captured,
                                    self._attrs[single_threaded], self._outputs)
        except self._failed as status:  # as the public call raises it: tf.errors.InvalidArgumentError, ...
            raise self._as_exception(status) from None
        return outputs[self._output].numpy()


def predict_rows(function, rows: list[dict], numeric_fill: dict[str, float] | None = None) -> np.ndarray:
    return function(**rows_to_tensors(rows, function, numeric_fill))[serving_output(function)].numpy()


def training_means(function, metadata: dict) -> dict[str, float]:
    """What a null number stands for: its training mean, from the zip's dataset_metadata.json."""
    from netfab.serve.inputs import FeatureSchema

    return FeatureSchema.from_signature(function, metadata).numeric_fill


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("zip")
    parser.add_argument("rows_file", help="newline-delimited JSON rows")
    parser.add_argument("--rows", type=int, default=5)
    args = parser.parse_args(argv)
    from data.loading import first_rows

    rows = first_rows(args.rows_file, args.rows)
    with tempfile.TemporaryDirectory(prefix="netfab-savedmodel-") as tmp, model_zip.ModelZip(args.zip) as package:
        function = load_serving_function(package.extract(tmp) / "saved_model")
        scores = predict_rows(function, rows, training_means(function, package.json("dataset_metadata.json")))
    json.dump({serving_output(function): scores.tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
