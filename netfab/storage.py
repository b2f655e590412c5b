"""Every input and output is a URI; this module is the one place that turns URIs into files.

    from netfab import storage
    files = storage.dataset_files("data/shards/part-*.json.gz")   # sorted local paths
    storage.publish_file(tmp_zip, "artifacts/deep_v1/run/model.zip")  # complete or absent

Local paths and file:// URIs are served here; gs:// arrives with the storage issue (#3).
"""
import hashlib
import glob
import os
import shutil
from pathlib import Path

from netfab.errors import DataError, NetfabError

DATASET_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")


def local_path(uri: str) -> Path:
    """The local path of a path or file:// URI; other schemes are refused with what works."""
    uri = str(uri)
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    if "://" in uri:
        raise NetfabError(f"{uri}: only local paths and file:// URIs are supported so far "
                          f"(gs:// support is tracked in issue #3); copy the data locally first")
    return Path(uri)


def dataset_files(uri: str) -> list[Path]:
    """The newline-delimited JSON files of a dataset: one file, a folder of shards, or a glob."""
    path = local_path(uri)
    if glob.has_magic(str(path)):
        files = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(DATASET_SUFFIXES))
    elif path.is_file():
        files = [path]
    else:
        raise DataError(f"dataset {uri} does not exist; pass --dataset=PATH (a file, a folder of "
                        f"shards or a glob such as 'out/part-*.json.gz')")
    if not files:
        raise DataError(f"dataset {uri} matches no files ({', '.join(DATASET_SUFFIXES)})")
    return files


def fetch_file(uri: str) -> Path:
    """A local copy of one file (a model zip, a shard): the file itself when it is local."""
    path = local_path(uri)
    if not path.is_file():
        raise NetfabError(f"{uri} does not exist")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def publish_file(source: Path, uri: str) -> str:
    """Copy `source` to `uri` so that readers see the whole file or nothing: temp name, rename."""
    target = local_path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)  # atomic on one filesystem
    finally:
        partial.unlink(missing_ok=True)
    return str(target)
