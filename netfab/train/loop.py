"""One training path for every architecture: effective config + dataset URI -> model zip.

    from netfab.config import load_config
    from netfab.train.loop import train
    result = train(load_config("deep_v1"), "data/fixtures/sanity_2k.json", "artifacts")
    print(result.zip_uri, result.metrics["test_auc"])

The rows are read into compact arrays and put through the front end once (data/loading.py,
data/preparation.py); the numeric core (models.build) trains on those arrays, with validation
after every epoch choosing the best one and the test split scored once at the end. The zip exports
front end + core, so it takes raw rows.

A run started by a tuning worker reports its validation AUC to the study after every epoch and
stops, leaving no run folder, when the study prunes it (netfab/train/trial_reporting.py).

A run lives in <output>/<variant>/<run_id>/. Until it is packaged, that folder holds a
checkpoint after every epoch; a run that was killed and is started again with the same
config, dataset and output resumes from its last epoch instead of starting over.
The dataset and the output may be gs:// URIs: shards come through the download cache, and
for a gs:// output the run folder is a local work folder (storage.work_folder) from which
metrics.csv, metrics.png and then model.zip are published to <output>/<variant>/<run_id>/.
"""
import csv
import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path

import keras
import tensorflow as tf

import models
from data.loading import load_rows
from data.preparation import prepare, split_rows
from models.common import binary_crossentropy_per_row, mean_squared_error_per_row
from models.frontend import build_front_end, with_front_end
from netfab import storage
from netfab import model_zip
from netfab.dataset.make import read_provenance
from netfab.drift.profile import PROFILE_KEY, TrainingCounts
from netfab.environment import describe_environment
from netfab.tasks import TASKS
from netfab.train.metrics import task_metrics, trivial_outputs
from netfab.train.plots import plot_metrics
from netfab.train.progress import TrainingProgress
from netfab.train.trial_reporting import StudyReporter, TrialPruned

log = logging.getLogger(__name__)
METRIC_COLUMNS = ("epoch", "train_loss", "train_auc", "validation_loss", "validation_auc", "seconds",
                  "test_loss", "test_auc")  # binary's; test figures on the best epoch's row only
# What Keras compiles per task: the loss (a value per row, so a row's weight counts) and the figure
# it reports after every epoch.
LOSSES = {"binary": binary_crossentropy_per_row, "multiclass": "sparse_categorical_crossentropy",
          "multilabel": "binary_crossentropy", "regression": mean_squared_error_per_row}
STATE = "state.json"
EVAL_BATCH = 4096


@dataclasses.dataclass(frozen=True)
class TrainResult:
    zip_uri: str
    run_id: str
    metrics: dict  # test_<m>, validation_<m> for each metric of the task (exact, best epoch's weights:
    # binary test_auc, test_loss, ...), baseline_test_<m> (netfab.train.metrics.trivial_outputs),
    # best_epoch, epochs_run, seconds
    resumed_at_epoch: int  # 0 for a fresh run


def train(effective, dataset_uri: str, output_uri: str) -> TrainResult:
    config = effective.config
    started = time.monotonic()

    # 1. Dataset: files and their checksums, rows checked against the config, split, shapes.
    files = storage.dataset_files(dataset_uri)
    file_info, content_sha256 = storage.dataset_checksums(files)
    loaded = load_rows(files, config)
    rows_read, nulls = loaded.rows_read, loaded.nulls
    # The drift profile's counts of the raw values, before prepare frees them (prepare draws the same
    # seeded split); finished with the fitted vocabularies and the validation scores in step 5.
    profile_counts = TrainingCounts(loaded, split_rows(loaded, config), config)
    prepared = prepare(loaded, config)  # takes the loaded columns over, freeing them as it goes
    del loaded
    rows = prepared.summary["rows"]
    log.info("dataset %s: %d file(s), %d rows read, %d train / %d validation / %d test, task %s%s",
             dataset_uri, len(files), rows_read, rows["train"], rows["validation"], rows["test"],
             config.task, _describe_target(prepared.summary))
    task = TASKS[config.task]

    # 2. Run folder: resume an unfinished run of the same config and data, or start one.
    run_dir = _run_folder(storage.work_folder(output_uri) / effective.variant,
                          f"{effective.fingerprint()}{content_sha256[:6]}")
    run_uri = storage.join(output_uri, effective.variant, run_dir.name)
    checkpoints = run_dir / "checkpoint"
    checkpoints.mkdir(parents=True, exist_ok=True)
    state = _read_state(checkpoints)

    # 3. Numeric core: built fresh, or reloaded with its optimizer state from the last checkpoint.
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    if state["checkpoint"]:
        core = models.load(checkpoints / state["checkpoint"])
        log.info("resuming %s after epoch %d of %d", run_dir, len(state["epochs"]), config.epochs)
    else:
        core = models.build(config, prepared.shapes)
        core.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                     loss=LOSSES[config.task], metrics=[_epoch_metric(config.task)],
                     steps_per_execution=config.steps_per_execution)
        log.info("training %s (%s, %d parameters) into %s", effective.variant, config.network,
                 core.count_params(), run_dir)
    resumed_at = len(state["epochs"])

    # 4. Fit on the compact arrays (Keras shuffles indices, not copies of rows), validation after
    #    every epoch, a checkpoint and the early-stopping decision after each.
    package = run_dir / "package"
    validation = prepared.validation
    reporter = StudyReporter.from_environ(os.environ, config.epochs)  # only when a tuning worker started this run
    if not state["finished"]:
        # Keras would copy numpy arrays into tensors: hand it tensors, each array freed once copied.
        features = prepared.train.features
        train_x = {name: tf.convert_to_tensor(features.pop(name)) for name in list(features)}
        train_y = tf.convert_to_tensor(prepared.train.label)
        # weight_column scales each training row's loss; validation and test count every row once
        core.fit(train_x, train_y, sample_weight=prepared.train.weight, batch_size=config.batch_size,
                 epochs=config.epochs, initial_epoch=resumed_at, shuffle=True, verbose=0,
                 validation_data=(validation.features, validation.label), validation_batch_size=EVAL_BATCH,
                 callbacks=[EpochCheckpoint(checkpoints, state, config.early_stopping_patience, config.task),
                            TrainingProgress(len(prepared.train), config.batch_size, config.epochs,
                                             metric=task.epoch_metric),
                            keras.callbacks.TensorBoard(package / "tensorboard", profile_batch=0),
                            *([reporter] if reporter else [])])
        del train_x, train_y
        if reporter and reporter.pruned_at:  # a trial not worth finishing: no zip, no folder left
            shutil.rmtree(run_dir)
            log.info("trial pruned by its study after epoch %d of %d (validation AUC %.4f)",
                     reporter.pruned_at, config.epochs, reporter.value)
            raise TrialPruned(reporter.pruned_at, reporter.value)
        state["finished"] = True
        storage.write_json_atomically(checkpoints / STATE, state)

    # 5. Exact metrics of the best epoch's weights: validation (what chose it), then the test
    #    split, scored this once; then the package.
    core.load_weights(checkpoints / "best.weights.h5")
    scores = {name: core.predict(split.features, batch_size=EVAL_BATCH, verbose=0)
              for name, split in (("validation", validation), ("test", prepared.test))}
    figures = {name: task_metrics(config.task, split.label, scores[name], config)
               for name, split in (("test", prepared.test), ("validation", validation))}
    baseline = task_metrics(config.task, prepared.test.label,
                            trivial_outputs(config.task, prepared.train.label, len(prepared.test)), config)
    metrics = {**{f"{name}_{m}": value for name, values in figures.items() for m, value in values.items()},
               **{f"baseline_test_{m}": value for m, value in baseline.items()},
               "best_epoch": state["best_epoch"], "epochs_run": len(state["epochs"]),
               "seconds": round(time.monotonic() - started, 1)}
    epochs = [dict(row) for row in state["epochs"]]
    best_row = next(row for row in epochs if row["epoch"] == state["best_epoch"])
    best_row.update({f"test_{m}": value for m, value in figures["test"].items()})  # the test figures, once
    dataset_metadata = {
        "source": dataset_uri, "files": file_info, "content_sha256": content_sha256,
        "provenance": read_provenance(dataset_uri),  # query, parameters, engine, job ids
        "rows_read": rows_read, "sample_rows": config.sample_rows, "nulls": nulls,
        "columns": {"task": config.task, "label": config.label_column, "id": config.id_column,
                    "categorical": list(config.categorical_columns), "list": list(config.list_columns),
                    "numeric": list(config.numeric_columns), "text": list(config.text_columns)},
        **prepared.summary,
        PROFILE_KEY: profile_counts.reference(prepared.shapes, scores["validation"])}
    config_record = {**effective.to_dict(), "run_id": run_dir.name, "dataset": dataset_uri,
                     "result": metrics}
    model = with_front_end(core, build_front_end(config, prepared.shapes), config)
    zip_uri = _package(model, core, prepared.shapes, package, run_dir, run_uri, epochs,
                       config_record, dataset_metadata, metric_columns(config.task))
    shutil.rmtree(checkpoints)
    shutil.rmtree(package)
    if storage.is_gcs(output_uri):  # published: the local work folder has served its purpose
        shutil.rmtree(run_dir)
    log.info("model zip %s: %s (best epoch %d of %d, validation %s %.4f)", zip_uri,
             ", ".join(f"test {model_zip.metric_name(m)} {v:.4f} (baseline {baseline[m]:.4f})"
                       for m, v in figures["test"].items()),
             metrics["best_epoch"], metrics["epochs_run"], model_zip.metric_name(task.monitor_exact),
             figures["validation"][task.monitor_exact])
    return TrainResult(zip_uri, run_dir.name, metrics, resumed_at)


def describe_result(metrics: dict, task: str) -> str:
    """The line `fab train` prints: every test figure (its trivial baseline beside it), the best epoch
    and the validation figure that chose it."""
    monitor = TASKS[task].monitor_exact
    tested = "  ".join(f"test {model_zip.metric_name(key[5:])} {value:.4f}"
                       for key, value in metrics.items() if key.startswith("test_"))
    baseline = metrics.get(f"baseline_test_{monitor}")
    return (f"{tested}  best epoch {metrics['best_epoch']} of {metrics['epochs_run']} (validation "
            f"{model_zip.metric_name(monitor)} {metrics[f'validation_{monitor}']:.4f})  ({metrics['seconds']:.0f} s)"
            + (f"  a trivial model: test {model_zip.metric_name(monitor)} {baseline:.4f}" if baseline is not None else ""))


def metric_columns(task: str) -> tuple[str, ...]:
    """metrics.csv's columns: a row per epoch with Keras's figures, the best one with every test metric."""
    if task == "binary":
        return METRIC_COLUMNS
    epoch_metric = TASKS[task].epoch_metric
    tested = {"multiclass": ("accuracy", "top_k_accuracy", "macro_f1"),
              "multilabel": ("micro_auc", "macro_auc", "micro_f1", "macro_f1"),
              "regression": ("rmse", "mae", "r2")}[task]
    return ("epoch", "train_loss", f"train_{epoch_metric}", "validation_loss", f"validation_{epoch_metric}",
            "seconds", "test_loss", *(f"test_{m}" for m in tested))


def _epoch_metric(task: str):
    """The Keras metric reported after every epoch (TASKS[task].epoch_metric), a streaming estimate:
    the exact figures are computed on the best epoch's outputs (netfab.train.metrics)."""
    return {"binary": lambda: keras.metrics.AUC(name="auc"),
            "multiclass": lambda: keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            "multilabel": lambda: keras.metrics.AUC(name="auc"),  # micro: every (row, tag) pair
            "regression": lambda: keras.metrics.RootMeanSquaredError(name="rmse")}[task]()


def _describe_target(summary: dict) -> str:
    if "label_rate" in summary:
        return f", label rate {summary['label_rate']['train']:.3f}"
    if "classes" in summary:
        return f", {len(summary['classes'])} {'classes' if 'class_rate' in summary else 'tags'}"
    return f", label mean {summary['mean']['train']:.4g} (std {summary['std']['train']:.4g})"


class EpochCheckpoint(keras.callbacks.Callback):
    """After each epoch: the metrics row, the best weights, early stopping, a resumable checkpoint.

    The checkpoint is written before state.json names it, so a kill at any point leaves a
    state that matches a checkpoint on disk.
    """

    def __init__(self, folder: Path, state: dict, patience: int, task: str = "binary"):
        super().__init__()
        self.folder, self.state, self.patience = folder, state, patience
        self.metric = TASKS[task].epoch_metric
        self.monitor, self.higher_is_better = TASKS[task].monitor, TASKS[task].higher_is_better

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        metric = self.metric
        row = {"epoch": epoch + 1, "train_loss": logs["loss"], f"train_{metric}": logs[metric],
               "validation_loss": logs["val_loss"], f"validation_{metric}": logs[f"val_{metric}"],
               "seconds": round(time.monotonic() - self.started, 3)}
        state = self.state
        state["epochs"].append(row)
        value, best = row[f"validation_{self.monitor}"], state.get("best_value", state.get("best_auc"))
        if best is None or (value > best if self.higher_is_better else value < best):
            state["best_value"], state["best_epoch"], state["wait"] = value, row["epoch"], 0
            _atomic_save(self.model.save_weights, self.folder / "best.weights.h5")
        else:
            state["wait"] += 1
        if self.patience and state["wait"] >= self.patience:
            self.model.stop_training = True
            state["finished"] = True
        previous, state["checkpoint"] = state["checkpoint"], f"epoch-{row['epoch']:04d}.keras"
        _atomic_save(self.model.save, self.folder / state["checkpoint"])
        storage.write_json_atomically(self.folder / STATE, state)
        if previous:
            (self.folder / previous).unlink(missing_ok=True)


def _run_folder(variant_dir: Path, fingerprint: str) -> Path:
    """The unfinished run with this fingerprint, or a new <UTC time>-<fingerprint> folder."""
    unfinished = sorted(p.parent.parent for p in variant_dir.glob(f"*-{fingerprint}/checkpoint/{STATE}")
                        if not (p.parent.parent / "model.zip").exists())
    if unfinished:
        return unfinished[-1]
    return variant_dir / f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{fingerprint}"


def _read_state(folder: Path) -> dict:
    path = folder / STATE
    if path.exists():
        return json.loads(path.read_text())
    return {"epochs": [], "best_value": None, "best_epoch": 0, "wait": 0, "finished": False,
            "checkpoint": None}


def _package(model, core, shapes, package: Path, run_dir: Path, run_uri: str, epochs: list[dict],
             config_record: dict, dataset_metadata: dict, columns: tuple[str, ...] = METRIC_COLUMNS) -> str:
    """Fill the package folder with every file of the model zip, then publish it to `run_uri`.

    metrics.csv and metrics.png go first, the zip last: a run folder holding model.zip is complete.
    """
    package.mkdir(parents=True, exist_ok=True)
    task = TASKS[config_record["values"]["task"]]
    model_zip.export_saved_model(model, package / "saved_model", output=task.output)
    model.save(package / "model.keras")
    core.save(package / "core.keras")  # the numeric core alone, for inference optimisation
    storage.write_json_atomically(package / "front_end.json", shapes.to_dict())  # its tables
    storage.write_json_atomically(package / "config.json", config_record)
    storage.write_json_atomically(package / "dataset_metadata.json", dataset_metadata)
    storage.write_json_atomically(package / "environment.json", describe_environment())
    with open(package / "metrics.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, columns, restval="")
        writer.writeheader()
        writer.writerows(epochs)
    title = f"{config_record['variant']} ({config_record['values']['network']}) run {run_dir.name}"
    plot_metrics(epochs, package / "metrics.png", title, task.epoch_metric,
                 next(row["epoch"] for row in epochs if any(k.startswith("test_") for k in row)))
    for name in ("metrics.csv", "metrics.png"):  # beside the zip too, for CI to archive
        storage.publish_file(package / name, storage.join(run_uri, name))
    return model_zip.write_package(package, storage.join(run_uri, "model.zip"))


def _atomic_save(save, path: Path) -> None:
    """A Keras save function writing `path` whole or not at all."""
    with storage.atomic_path(path, keep_suffix=True) as partial:
        save(partial)
