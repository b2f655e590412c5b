"""A model zip loaded for serving: fetched from storage, verified, unpacked, warmed up.

    from netfab.serve.model import ServingModel
    model = ServingModel.load("artifacts/deep_v1/<run_id>/model.zip")   # also gs:// via storage
    scores = model.predict(model.inputs.columns_from_rows(rows))        # float32 [rows] or [rows, classes]
    model.output, model.classes        # "probability" or "value"; the class names of a per-class output

`fab serve` and `fab predict` both go through here, so the HTTP API and offline scoring call
the SavedModel in exactly the same way.
"""
import gc
import logging
import tempfile
import time
import weakref

import numpy as np

from netfab import model_zip
from netfab.config import column_roles, config_from_values
from netfab.drift.profile import ReferenceProfile
from netfab.errors import NetfabError, PackageError
from netfab.serve.saved_model import FlatCaller, serving_output
from netfab.serve.inputs import FeatureSchema

log = logging.getLogger(__name__)

# (rows, single_threaded) of the warm-up calls: the first call of each batch size and of each
# executor pays for its setup (~50 ms for the single-threaded one a lone request uses): pay it before ready.
WARMUP_CALLS = ((1, True), (1, False), (8, False), (64, False), (512, False))
# A core compiled by XLA (fab optimize --to=xla) compiles once per power-of-two batch size: the
# warm-up pays for every size up to the batcher's largest batch, not the first request of each.
COMPILED_PER_BATCH_SIZE = {"xla"}

# Weak references to every loaded model, so that the server can show that a swapped-out model
# has really left memory (the `netfab_models_in_memory` metric).
_LOADED: "weakref.WeakSet[ServingModel]" = weakref.WeakSet()


def configure_tf_threads(threads: int) -> None:
    """Pin TensorFlow's inter- and intra-op pools to `threads` each (0: TensorFlow's default).

    Must run before TensorFlow executes its first op; on a small shared machine fewer threads
    mean less spinning and lower tail latency (benchmarks/serve.py measures both).
    """
    if threads:
        import tensorflow as tf

        tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.config.threading.set_intra_op_parallelism_threads(threads)


def models_in_memory(collect_garbage: bool = True) -> int:
    """Loaded models still in memory; collect_garbage: first free the ones only cycles keep alive
    (a full collection: ~10 ms or more, so not on every publish of fab serve --workers)."""
    if collect_garbage:
        gc.collect()
    return len(_LOADED)


class ServingModel:
    """One loaded model: its name, version, input schema and serving function."""

    def __init__(self, uri: str, folder: tempfile.TemporaryDirectory, function, name: str,
                 version: str, inputs: FeatureSchema, config_values: dict, classes: list[str] = ()):
        self.uri, self.name, self.version, self.inputs = uri, name, version, inputs
        # The task's output (netfab/tasks.py): "probability" [rows], or [rows, classes] with the
        # class (tag) names in this order for multiclass and multilabel; "value" [rows] for regression.
        self.output, self.classes = serving_output(function), list(classes)
        self.id_column = config_values["id_column"]  # carried next to scores by `fab predict`
        # feature column -> the config key that names it, for error messages about input files
        self.column_roles = {c: r for c, r in column_roles(config_from_values(config_values)).items()
                             if r not in ("label_column", "weight_column")}
        self._folder = folder  # removed when this object is garbage collected
        self._call = FlatCaller(function)
        self.loaded_at = time.time()
        self.optimized_form = None  # fab optimize's form of the core, for a zip it wrote
        self.drift_profile = None  # the training split's reference profile (netfab.drift), when the zip has one
        self.memory_bytes = 0  # what the server grew by loading it (netfab.serve.app), 0 if not measured
        _LOADED.add(self)

    @classmethod
    def load(cls, uri: str, name: str | None = None) -> "ServingModel":
        """Fetch `uri` (a model zip), verify its manifest, unpack it safely and load its SavedModel."""
        with model_zip.ModelZip(uri) as package:  # fetched, opened and verified once
            return cls.from_zip(package, name)

    @classmethod
    def from_zip(cls, package: model_zip.ModelZip, name: str | None = None) -> "ServingModel":
        """Load the SavedModel of an opened (so verified) zip; TensorFlow is imported only now."""
        from netfab.serve.saved_model import load_serving_function

        started = time.perf_counter()
        folder = tempfile.TemporaryDirectory(prefix="netfab-serve-")
        unpacked = package.extract(folder.name)
        config = package.json("config.json")
        metadata = package.json("dataset_metadata.json")
        function = load_serving_function(unpacked / "saved_model")
        inputs = FeatureSchema.from_signature(function, metadata)
        model = cls(str(package.uri), folder, function, name or config["variant"], config["run_id"], inputs,
                    config["values"], metadata.get("classes", []))
        try:
            model.drift_profile = ReferenceProfile.from_zip(package)
        except PackageError:  # trained before zips held one: served, but without drift
            log.info("%s has no reference profile: no drift for it", package.uri)
        if model_zip.OPTIMIZATION in package.manifest["files"]:
            model.optimized_form = package.json(model_zip.OPTIMIZATION)["form"]
        log.info("loaded %s (%s, version %s) in %.1f s", package.uri, model.name, model.version,
                 time.perf_counter() - started)
        return model

    def predict(self, columns: dict, single_threaded: bool = False) -> np.ndarray:
        """The output for columns checked by `self.inputs` (numpy arrays or tensors): float32 [rows],
        or [rows, len(self.classes)] for a per-class model.

        single_threaded: run every op in the calling thread (FlatCaller), for a few rows.
        """
        return self._call(columns, single_threaded)

    def warmup_calls(self, max_batch_rows: int) -> list[tuple[int, bool]]:
        """(rows, single_threaded) of each warm-up call; max_batch_rows: the largest batch the
        caller will make (a core compiled per batch size is warmed for each power of two up to it)."""
        calls = list(WARMUP_CALLS)
        if self.optimized_form in COMPILED_PER_BATCH_SIZE:
            calls += [(1 << power, False) for power in range(max(1, max_batch_rows - 1).bit_length() + 1)
                      if (1 << power, False) not in calls]
        return calls

    def warm_up(self, max_batch_rows: int = 512) -> float:
        """Call the model on sample rows of several batch sizes; returns the seconds it took."""
        started = time.perf_counter()
        for size, single_threaded in self.warmup_calls(max_batch_rows):
            scores = self.predict(self.inputs.sample_columns(size), single_threaded)
            if scores.shape != self.output_shape(size) or not np.isfinite(scores).all():
                raise NetfabError(f"{self.uri}: warm-up on {size} sample rows returned "
                                  f"{scores.shape} scores, some not finite; the model is broken: "
                                  f"check its metrics.csv, retrain, or serve another zip")
        return time.perf_counter() - started

    def output_shape(self, rows: int) -> tuple[int, ...]:
        return (rows, len(self.classes)) if self.classes else (rows,)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "uri": self.uri}
