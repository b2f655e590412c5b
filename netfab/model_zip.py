"""The model zip: one self-describing, checksummed file per training run.

    from netfab import model_zip
    model_zip.write_package(staging_dir, "artifacts/deep_v1/<run_id>/model.zip")

    with model_zip.ModelZip("gs://bucket/models/deep_v1/<run_id>/model.zip") as package:  # verified
        config = package.json("config.json")
        folder = package.extract(into=tmp)                     # no path escapes, no absurd sizes
        print(package.describe())                              # what `fab inspect` prints

Layout (docs/model-zip.md): saved_model/ (raw features in, probability out), model.keras,
core.keras, front_end.json, config.json, dataset_metadata.json, metrics.csv, metrics.png,
tensorboard/, environment.json, optimization.json (a zip made by `fab optimize` only), and
MANIFEST.json with the sha256 and size of every other file.

A reader opens a zip once through ModelZip: fetched once (gs:// through the download cache),
opened once, its manifest verified once, members handed out from the open archive.
"""
import contextlib
import json
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from netfab import storage
from netfab.errors import NotFoundError, PackageError

MANIFEST = "MANIFEST.json"
REQUIRED = ("saved_model/saved_model.pb", "model.keras", "core.keras", "front_end.json",
            "config.json", "dataset_metadata.json",
            "metrics.csv", "metrics.png", "environment.json", MANIFEST)
REQUIRED_FOLDERS = ("tensorboard/",)
MAX_UNPACKED_BYTES = 8 << 30  # refuse a zip that would unpack to more than 8 GiB
MAX_READ_BYTES = 64 << 20  # largest metadata member read whole (config.json, metrics.csv, ...)
# Model weights barely compress, while deflate can pack ~1,000x: a large member that inflates
# this much is a zip bomb, refused before a byte of it is read (Apache POI's ZipSecureFile
# applies the same kind of ratio rule).
MAX_INFLATE_RATIO = 100
RATIO_CHECKED_BYTES = 16 << 20  # smaller members (metadata, a few zeros) may compress as they like
SERVING_SIGNATURE = "serving_default"
SERVING_OUTPUT = "probability"
OPTIMIZATION = "optimization.json"  # what `fab optimize` did and measured; absent in a trained zip


def export_saved_model(model, path: Path, serve=None, output: str = SERVING_OUTPUT) -> None:
    """A SavedModel whose serving_default signature takes raw columns and returns `output`: the
    task's (netfab/tasks.py), "probability" [rows] or [rows, classes], or "value" [rows].

    serve: features -> probability, computed with `model`'s variables (e.g. its core compiled by
    XLA); by default the model's own call.
    """
    import keras
    import tensorflow as tf

    serve = serve or (lambda features: model(features, training=False))
    signature = {i.name: tf.TensorSpec((None,), i.dtype, name=i.name) for i in model.inputs}
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_SIGNATURE, lambda features: {output: serve(features)},
                         input_signature=[signature])
    archive.write_out(str(path), verbose=False)


def write_package(staging: Path, target_uri: str) -> str:
    """Write MANIFEST.json into `staging`, zip it beside `staging`, publish it whole at `target_uri`."""
    # The zip is written in the folder holding `staging` (the run's folder), not the system temp
    # folder, so that a run killed mid-write leaves nothing elsewhere: the next package written
    # there (the run resumed) first removes the killed run's partial files, its zip's and any in
    # `staging`, which would otherwise be zipped.
    storage.remove_dead_partials(staging.parent)
    files = sorted(p for p in staging.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {"files": {p.relative_to(staging).as_posix(): {"sha256": storage.file_sha256(p), "bytes": p.stat().st_size}
                          for p in files}}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    local_zip = storage.partial_path(staging.parent / PurePosixPath(target_uri).name)
    try:
        with zipfile.ZipFile(local_zip, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files + [staging / MANIFEST]:
                archive.write(path, path.relative_to(staging).as_posix())
        return storage.publish_file(local_zip, target_uri, move=True)  # a rename for a target beside it
    finally:
        local_zip.unlink(missing_ok=True)


class ModelZip:
    """A model zip fetched, opened and verified once; its members read from the open archive.

    The manifest is checked when the zip is opened (PackageError naming the first problem),
    hashing each member as a stream, so a large SavedModel is never held in memory whole.
    """

    def __init__(self, uri):
        self.uri = uri  # as the user wrote it, for messages
        self.path = _local_zip(uri)
        try:
            self._archive = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as error:
            raise PackageError(f"{uri} is not a readable zip ({error}); it may be truncated") from None
        try:
            self.manifest = self._verified_manifest()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "ModelZip":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._archive.close()

    def json(self, name: str) -> dict:
        try:
            return json.loads(self._read(name))
        except ValueError as error:
            raise PackageError(f"{self.uri}: {name} is not valid JSON ({error}); the zip was modified "
                               f"or damaged: re-download or retrain") from None

    def text(self, name: str) -> str:
        return self._read(name).decode()

    def extract(self, into) -> Path:
        """Unpack into `into` (names and sizes were checked on opening); returns the folder."""
        into = Path(into).resolve()
        self._archive.extractall(into)
        return into

    def describe(self) -> str:
        """The summary `fab inspect` prints: variant, dataset, rows, final metrics, versions."""
        config = self.json("config.json")
        dataset = self.json("dataset_metadata.json")
        environment = self.json("environment.json")
        result = config.get("result", {})
        rows = dataset["rows"]
        lines = [
            f"model zip   {self.uri}  (manifest OK: {len(self.manifest['files'])} files verified)",
            f"variant     {config['variant']}  (network {config['values']['network']}, run {config['run_id']})",
            f"dataset     {dataset['source']}  sha256 {dataset['content_sha256'][:16]}…",
            f"rows        {rows['total']} ({rows['train']} train / {rows.get('validation', 0)} validation / "
            f"{rows['test']} test), {_describe_target(dataset)}",
            f"metrics     {_describe_result(result)}, best epoch {result.get('best_epoch')} of "
            f"{result.get('epochs_run')}",
            f"versions    python {environment['python']}, tensorflow {environment['tensorflow']}, "
            f"keras {environment['keras']}, commit {environment['git_commit'][:12]}, {environment['device']}",
        ]
        if OPTIMIZATION in self.manifest["files"]:  # the metrics above are the trained zip's
            optimized = self.json(OPTIMIZATION)
            original, measured = optimized["original"], optimized["optimized"]
            lines.append(f"optimized   {optimized['form']} of {optimized['source']['uri']}: test AUC "
                         f"{measured['test_auc']:.4f} (original {original['test_auc']:.4f})")
        return "\n".join(lines)

    def _read(self, name: str) -> bytes:
        """A small member (JSON, CSV) whole; the size cap keeps a hostile zip from filling memory."""
        size = self._archive.getinfo(name).file_size
        if size > MAX_READ_BYTES:
            raise PackageError(f"{self.uri}: {name} is {size / 2**20:.0f} MiB, more than the "
                               f"{MAX_READ_BYTES >> 20} MiB a metadata file may hold; refusing this zip")
        with self._inflating(name):
            return self._archive.read(name)

    @contextlib.contextmanager
    def _inflating(self, name: str):
        """Reading a member: a flipped or missing byte becomes a PackageError naming it."""
        try:
            yield
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise PackageError(f"{self.uri}: {name} is damaged and cannot be inflated ({error}); "
                               f"re-download the zip or retrain") from None

    def _verified_manifest(self) -> dict:
        """The manifest, once every member has been checked against it: names, sizes, checksums.

        Cheap checks first, each before a byte of a member is inflated: names that would escape
        the unpack folder, the total and per-member sizes, the inflate ratio; then each member
        is hashed as a stream.
        """
        infos = self._archive.infolist()
        for info in infos:
            if not _stays_inside(info.filename):
                raise PackageError(f"{self.uri}: entry {info.filename!r} points outside the unpack "
                                   f"folder; refusing this zip")
        total = sum(info.file_size for info in infos)
        if total > MAX_UNPACKED_BYTES:
            raise PackageError(f"{self.uri} would unpack to {total / 2**30:.1f} GiB "
                               f"(limit {MAX_UNPACKED_BYTES / 2**30:.0f} GiB); refusing")
        names = {info.filename for info in infos}
        missing = [n for n in REQUIRED if n not in names]
        missing += [d for d in REQUIRED_FOLDERS if not any(n.startswith(d) for n in names)]
        if missing:
            raise PackageError(f"{self.uri} is incomplete: missing {', '.join(missing)}")
        manifest = self.json(MANIFEST)
        listed = manifest.get("files") if isinstance(manifest, dict) else None
        if not isinstance(listed, dict) or not all(
                isinstance(e, dict) and isinstance(e.get("sha256"), str) and isinstance(e.get("bytes"), int)
                for e in listed.values()):
            raise PackageError(f"{self.uri}: {MANIFEST} does not hold a sha256 and a size for each "
                               f"file; the zip was not written by netfab, or was modified: retrain")
        extra = names - set(listed) - {MANIFEST} - {n for n in names if n.endswith("/")}
        if extra:
            raise PackageError(f"{self.uri} holds files its manifest does not list: "
                               f"{', '.join(sorted(extra)[:5])}")
        for name, entry in listed.items():
            if name not in names:
                raise PackageError(f"{self.uri}: {name} is in the manifest but not in the zip")
            info = self._archive.getinfo(name)
            if info.file_size != entry["bytes"]:
                raise PackageError(f"{self.uri}: {name} does not match its manifest size (expected "
                                   f"{entry['bytes']} bytes, the zip holds {info.file_size}); the zip "
                                   f"was modified or damaged: re-download or retrain")
            if info.file_size > RATIO_CHECKED_BYTES and info.file_size > MAX_INFLATE_RATIO * info.compress_size:
                raise PackageError(f"{self.uri}: {name} would inflate from {info.compress_size} to "
                                   f"{info.file_size} bytes (more than {MAX_INFLATE_RATIO}x); model "
                                   f"files do not compress like that: this zip is a zip bomb or damaged; "
                                   f"refusing it")
        for name, entry in listed.items():  # the costly check last, a member at a time
            digest = self._member_sha256(name)
            if digest != entry["sha256"]:
                raise PackageError(f"{self.uri}: {name} does not match its manifest checksum "
                                   f"(expected sha256 {entry['sha256'][:12]}…, got {digest[:12]}…); "
                                   f"the zip was modified or damaged: re-download or retrain")
        return manifest

    def _member_sha256(self, name: str) -> str:
        """Hashed in blocks; zipfile stops at the member's declared size and checks its CRC."""
        with self._inflating(name), self._archive.open(name) as stream:
            return storage.stream_sha256(stream)


def _stays_inside(name: str) -> bool:
    """A member name that unpacks inside the folder: relative and without `..`."""
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def _local_zip(zip_uri) -> Path:
    """The zip as a local file: itself, or a verified download of a gs:// one (cached)."""
    try:
        return storage.fetch_file(zip_uri)
    except NotFoundError:
        raise PackageError(f"model zip {zip_uri} does not exist") from None


def _describe_target(dataset: dict) -> str:
    """The target of a zip's dataset_metadata.json in a few words (a binary one: its label rate)."""
    if "label_rate" in dataset:
        return (f"label rate {dataset['label_rate']['train']:.3f} train / "
                f"{dataset['label_rate']['test']:.3f} test")
    if "classes" in dataset:
        shown = ", ".join(dataset["classes"][:8]) + (" …" if len(dataset["classes"]) > 8 else "")
        noun = "tags" if dataset["task"] == "multilabel" else "classes"
        return f"{dataset['task']}: {len(dataset['classes'])} {noun} ({shown})"
    return f"regression: label mean {dataset['mean']['train']:.4g} train, std {dataset['std']['train']:.4g}"


def _describe_result(result: dict) -> str:
    """Every test figure of config.json's result, with its trivial baseline where recorded."""
    figures = []
    for key, value in result.items():
        if key.startswith("test_"):
            baseline = result.get(f"baseline_{key}")
            figures.append(f"test {metric_name(key.removeprefix('test_'))} {value:.4f}" +
                           (f" (baseline {baseline:.4f})" if baseline is not None else ""))
    return ", ".join(figures)


def metric_name(metric: str) -> str:
    """A metric's key (netfab.train.metrics.task_metrics) as people write it: auc -> AUC."""
    return {"auc": "AUC", "rmse": "RMSE", "mae": "MAE", "r2": "R²", "micro_auc": "micro AUC",
            "macro_auc": "macro AUC", "top_k_accuracy": "top-k accuracy"}.get(metric, metric.replace("_", " "))
