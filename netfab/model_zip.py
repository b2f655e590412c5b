"""The model zip: one self-describing, checksummed file per training run.

    from netfab import model_zip
    model_zip.write_package(staging_dir, "artifacts/deep_v1/<run_id>/model.zip")
    manifest = model_zip.verify_package("artifacts/deep_v1/<run_id>/model.zip")
    folder = model_zip.extract_package(zip_path, into=tmp)       # verified, no path escapes

Layout (docs/model-zip.md): saved_model/ (raw features in, probability out), model.keras,
config.json, dataset_metadata.json, metrics.csv, metrics.png, tensorboard/,
environment.json, and MANIFEST.json with the sha256 and size of every other file.
"""
import hashlib
import json
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from netfab import storage
from netfab.errors import NotFoundError, PackageError

MANIFEST = "MANIFEST.json"
REQUIRED = ("saved_model/saved_model.pb", "model.keras", "core.keras", "front_end.json",
            "config.json", "dataset_metadata.json",
            "metrics.csv", "metrics.png", "environment.json", MANIFEST)
REQUIRED_FOLDERS = ("tensorboard/",)
MAX_UNPACKED_BYTES = 8 << 30  # refuse a zip that would unpack to more than 8 GiB
SERVING_SIGNATURE = "serving_default"
SERVING_OUTPUT = "probability"


def export_saved_model(model, path: Path) -> None:
    """A SavedModel whose serving_default signature takes raw columns and returns probability."""
    import keras
    import tensorflow as tf

    signature = {i.name: tf.TensorSpec((None,), i.dtype, name=i.name) for i in model.inputs}
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_SIGNATURE,
                         lambda features: {SERVING_OUTPUT: model(features, training=False)},
                         input_signature=[signature])
    archive.write_out(str(path), verbose=False)


def write_package(staging: Path, target_uri: str) -> str:
    """Write MANIFEST.json into `staging`, zip it, publish it whole at `target_uri`."""
    files = sorted(p for p in staging.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {"files": {p.relative_to(staging).as_posix(): {"sha256": storage.file_sha256(p), "bytes": p.stat().st_size}
                          for p in files}}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    with tempfile.TemporaryDirectory(prefix="netfab-zip-") as tmp:
        local_zip = Path(tmp) / "model.zip"
        with zipfile.ZipFile(local_zip, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files + [staging / MANIFEST]:
                archive.write(path, path.relative_to(staging).as_posix())
        return storage.publish_file(local_zip, target_uri)


def verify_package(zip_path) -> dict:
    """The manifest of a complete, untampered model zip; PackageError naming the first problem."""
    path = _local_zip(zip_path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [n for n in REQUIRED if n not in names]
            missing += [d for d in REQUIRED_FOLDERS if not any(n.startswith(d) for n in names)]
            if missing:
                raise PackageError(f"{zip_path} is incomplete: missing {', '.join(missing)}")
            manifest = json.loads(archive.read(MANIFEST))
            listed = manifest["files"]
            extra = names - set(listed) - {MANIFEST} - {n for n in names if n.endswith("/")}
            if extra:
                raise PackageError(f"{zip_path} holds files its manifest does not list: "
                                   f"{', '.join(sorted(extra)[:5])}")
            for name, entry in listed.items():
                if name not in names:
                    raise PackageError(f"{zip_path}: {name} is in the manifest but not in the zip")
                digest = hashlib.sha256(archive.read(name)).hexdigest()
                if digest != entry["sha256"]:
                    raise PackageError(f"{zip_path}: {name} does not match its manifest checksum "
                                       f"(expected sha256 {entry['sha256'][:12]}…, got {digest[:12]}…); "
                                       f"the zip was modified or damaged: re-download or retrain")
    except zipfile.BadZipFile as error:
        raise PackageError(f"{zip_path} is not a readable zip ({error}); it may be truncated") from None
    return manifest


def extract_package(zip_path, into: Path) -> Path:
    """Verify, then unpack into `into`, refusing names that escape it and absurd sizes."""
    verify_package(zip_path)
    into = Path(into).resolve()
    with zipfile.ZipFile(_local_zip(zip_path)) as archive:
        total = sum(info.file_size for info in archive.infolist())
        if total > MAX_UNPACKED_BYTES:
            raise PackageError(f"{zip_path} would unpack to {total / 2**30:.1f} GiB "
                               f"(limit {MAX_UNPACKED_BYTES / 2**30:.0f} GiB); refusing")
        for info in archive.infolist():
            target = (into / info.filename).resolve()
            if PurePosixPath(info.filename).is_absolute() or not target.is_relative_to(into):
                raise PackageError(f"{zip_path}: entry {info.filename!r} points outside the "
                                   f"unpack folder; refusing this zip")
        archive.extractall(into)
    return into


def read_json_member(zip_path, name: str) -> dict:
    with zipfile.ZipFile(_local_zip(zip_path)) as archive:
        return json.loads(archive.read(name))


def read_text_member(zip_path, name: str) -> str:
    with zipfile.ZipFile(_local_zip(zip_path)) as archive:
        return archive.read(name).decode()


def _local_zip(zip_uri) -> Path:
    """The zip as a local file: itself, or a verified download of a gs:// one (cached)."""
    try:
        return storage.fetch_file(zip_uri)
    except NotFoundError:
        raise PackageError(f"model zip {zip_uri} does not exist") from None


def describe_package(zip_path) -> str:
    """The summary `fab inspect` prints: variant, dataset, rows, final metrics, versions."""
    manifest = verify_package(zip_path)
    config = read_json_member(zip_path, "config.json")
    dataset = read_json_member(zip_path, "dataset_metadata.json")
    environment = read_json_member(zip_path, "environment.json")
    result = config.get("result", {})
    rows = dataset["rows"]
    lines = [
        f"model zip   {zip_path}  (manifest OK: {len(manifest['files'])} files verified)",
        f"variant     {config['variant']}  (network {config['values']['network']}, run {config['run_id']})",
        f"dataset     {dataset['source']}  sha256 {dataset['content_sha256'][:16]}…",
        f"rows        {rows['total']} ({rows['train']} train / {rows.get('validation', 0)} validation / "
        f"{rows['test']} test), label rate {dataset['label_rate']['train']:.3f} train / "
        f"{dataset['label_rate']['test']:.3f} test",
        f"metrics     test AUC {result.get('test_auc', float('nan')):.4f}, test loss "
        f"{result.get('test_loss', float('nan')):.4f}, best epoch {result.get('best_epoch')} of "
        f"{result.get('epochs_run')} (validation AUC {result.get('validation_auc', float('nan')):.4f})",
        f"versions    python {environment['python']}, tensorflow {environment['tensorflow']}, "
        f"keras {environment['keras']}, commit {environment['git_commit'][:12]}, {environment['device']}",
    ]
    return "\n".join(lines)
