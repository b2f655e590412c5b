"""Every input and output is a URI; this module is the one place that turns URIs into files.

    from netfab import storage
    files = storage.dataset_files("gs://bucket/datasets/v1/part-*.json")  # sorted local paths
    zip_path = storage.fetch_file("gs://bucket/models/deep_v1/<run_id>/model.zip")
    storage.publish_file(tmp_zip, "gs://bucket/models/deep_v1/<run_id>/model.zip")  # whole or absent
    with storage.atomic_path(folder / "result.json") as partial:   # a local file, whole or absent
        partial.write_text(text)

A URI is a local path, a file:// URI or gs://bucket/name. gs:// objects are read through the
download cache (netfab/storage/gcs.py: verified against their checksums, keyed by object generation),
so every reader gets a local path. The cache is $NETFAB_CACHE_DIR, else $XDG_CACHE_HOME/netfab,
else ~/.cache/netfab; deleting it is always safe.
"""
import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from netfab.errors import DataError, NetfabError, NotFoundError

DATASET_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz",
                    ".csv", ".csv.gz", ".parquet")  # data/loading.py reads each
CACHE_ENV = "NETFAB_CACHE_DIR"
GCS = "gs://"


def is_gcs(uri) -> bool:
    return str(uri).startswith(GCS)


def cache_dir(environ=None) -> Path:
    """Where downloads and the local work folders of gs:// outputs live."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser()
    base = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "netfab"


def local_path(uri: str) -> Path:
    """The local path of a path or file:// URI; a gs:// URI is refused (use fetch_file for it)."""
    uri = str(uri)
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    if is_gcs(uri):
        # Reached only where netfab needs a folder it can write in place (e.g. a study folder):
        # datasets, model zips and training output go through the gs:// paths of this module.
        raise NetfabError(f"{uri}: a local path is needed here, gs:// is not supported for it; "
                          f"use a local folder or a bucket mounted on this machine")
    if "://" in uri:
        raise NetfabError(f"{uri}: unsupported URI scheme; use a local path, file:// or gs://bucket/name")
    return Path(uri)


def join(uri: str, *parts: str) -> str:
    """`uri` with path parts appended, keeping its scheme: join("gs://b/models", "deep_v1")."""
    uri = str(uri)
    if is_gcs(uri) or uri.startswith("file://"):
        return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(uri).joinpath(*parts))


def folder_of(uri: str) -> str:
    """The folder of a dataset URI: a glob's or a file's folder, or the URI itself (a folder)."""
    uri = str(uri).rstrip("/")
    if glob.has_magic(uri) or uri.endswith(DATASET_SUFFIXES):
        return uri.rsplit("/", 1)[0] if "/" in uri else "."
    return uri


def dataset_files(uri: str) -> list[Path]:
    """The data files of a dataset (NDJSON, CSV, Parquet): one file, a folder of shards, or a glob.

    Local paths for every scheme: gs:// objects come through the verified download cache.
    Names starting with `_` or `.` in a folder (the `_dataset.json` sidecar) are not data.
    """
    if is_gcs(uri):
        from netfab.storage import gcs

        blobs = gcs.glob(uri, keep=is_data_name)
        if not blobs:
            raise DataError(f"dataset {uri} matches no objects ({', '.join(DATASET_SUFFIXES)})")
        return gcs.fetch_many(blobs, cache_dir(), label=uri)
    path = local_path(uri)
    if glob.has_magic(str(path)):
        files = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and is_data_name(p.name))
    elif path.is_file():
        files = [path]
    else:
        raise DataError(f"dataset {uri} does not exist; pass --dataset=PATH (a file, a folder of "
                        f"shards or a glob such as 'out/part-*.json.gz')")
    if not files:
        raise DataError(f"dataset {uri} matches no files ({', '.join(DATASET_SUFFIXES)})")
    return files


def is_data_name(name: str) -> bool:
    """A shard of a dataset folder, by its name: not a sidecar (`_dataset.json`) or a temporary (`.x`)."""
    return name.endswith(DATASET_SUFFIXES) and not name.startswith(("_", "."))


def fetch_file(uri: str) -> Path:
    """A local copy of one file (a model zip, a shard): the file itself when it is local."""
    if is_gcs(uri):
        from netfab.storage import gcs

        return gcs.fetch_many([gcs.get(uri)], cache_dir())[0]
    path = local_path(uri)
    if not path.is_file():
        raise NotFoundError(f"{uri} does not exist")
    return path


def list_files(uri: str) -> list[str]:
    """The URIs of the files directly in a folder (sidecars and temporaries included); [] if none."""
    if is_gcs(uri):
        from netfab.storage import gcs

        location = gcs.parse(uri)
        prefix = location.name.rstrip("/") + "/" if location.name else ""
        with gcs.errors(uri, "list"):
            blobs = gcs.client().bucket(location.bucket).list_blobs(prefix=prefix, delimiter="/")
            return sorted(f"gs://{location.bucket}/{b.name}" for b in blobs)
    path = local_path(uri)
    return sorted(str(p) for p in path.iterdir() if p.is_file()) if path.is_dir() else []


def delete(uri: str) -> None:
    if is_gcs(uri):
        from netfab.storage import gcs

        gcs.delete(uri)
    else:
        local_path(uri).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target, keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary path to write `target` under: renamed onto `target` when the block ends
    normally, removed when it raises, so that readers see the whole file or none of it.
    keep_suffix: the temporary name ends in the target's suffixes too (Keras picks its file
    format by them: .keras, .weights.h5).

        with storage.atomic_path(folder / "result.json") as partial:
            partial.write_text(text)
    """
    target = Path(target)
    partial = partial_path(target, keep_suffix)
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def partial_path(target: Path, keep_suffix: bool = False) -> Path:
    """The temporary name this process and thread write `target` under before renaming it."""
    # Beside the target, so that os.replace is a rename within one filesystem (atomic); the
    # process and thread in the name keep concurrent writers (serve workers, download threads)
    # off each other's temporary, and the leading dot keeps it out of dataset folder listings.
    return target.with_name(f".{target.name}.partial-{os.getpid()}-{threading.get_ident()}"
                            f"{''.join(target.suffixes) if keep_suffix else ''}")


def remove_dead_partials(folder: Path) -> None:
    """Delete the temporaries (partial_path) in `folder` and below whose writing process has ended.

    A writer killed mid-write (kill -9, the OOM killer) cannot remove its own; nothing else
    would. The process ids are this machine's: call it on a folder that one run owns (a run
    folder), not on one that processes of other machines or containers write into at once.
    """
    for path in Path(folder).rglob(".*.partial-*"):
        match = re.match(r"^\..+\.partial-(\d+)-\d+", path.name)
        if match and not _process_runs(int(match[1])):
            path.unlink(missing_ok=True)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_json_atomically(path: Path, value) -> None:
    """A local JSON file that readers see whole or not at all."""
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(value, indent=1))


def file_sha256(path: Path) -> str:
    with open(path, "rb") as stream:
        return stream_sha256(stream)


def dataset_checksums(files: list[Path]) -> tuple[list[dict], str]:
    """Each file's name, size and sha256, and the content sha256 of them all in order: what a
    model zip records of the data it was trained on (dataset_metadata.json)."""
    info = [{"name": p.name, "bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in files]
    return info, hashlib.sha256("".join(f["sha256"] for f in info).encode()).hexdigest()


def stream_sha256(stream, block_bytes: int = 1 << 20) -> str:
    """The sha256 of what a binary stream holds, read a block at a time (bounded memory)."""
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(block_bytes), b""):
        digest.update(block)
    return digest.hexdigest()


def publish_file(source: Path, uri: str, move: bool = False) -> str:
    """Copy (or move) `source` to `uri` so that readers see the whole file or nothing.

    Local: a temporary name in the target folder, then a rename (a move on the same
    filesystem is that rename alone). gs://: one checksummed upload, which Cloud Storage
    makes visible only when it completes (netfab/storage/gcs.py).
    """
    if is_gcs(uri):
        from netfab.storage import gcs

        return gcs.upload(Path(source), uri)
    target = local_path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    if move:
        try:
            os.replace(source, target)
            return str(target)
        except OSError:  # another filesystem: copy below
            pass
    with atomic_path(target) as partial:
        shutil.copyfile(source, partial)
    return str(target)


def publish_text(text: str, uri: str) -> str:
    """publish_file for a small text (a sidecar, a manifest, a leaderboard): whole or absent."""
    with tempfile.TemporaryDirectory(prefix="netfab-publish-") as tmp:
        source = Path(tmp) / Path(str(uri)).name
        source.write_text(text)
        return publish_file(source, uri)


def work_folder(output_uri: str) -> Path:
    """A local folder standing for an output URI: the folder itself, or one under the cache.

    Training keeps its checkpoints here (they need a local filesystem); for a gs:// output the
    folder is keyed by the URI, so a killed run started again with the same output resumes.
    """
    if not is_gcs(output_uri):
        return local_path(output_uri)
    key = hashlib.sha256(str(output_uri).rstrip("/").encode()).hexdigest()[:16]
    return cache_dir() / "work" / key
