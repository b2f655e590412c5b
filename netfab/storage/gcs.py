"""gs:// for netfab.storage: glob, verified and cached downloads, checksummed atomic uploads.

    from netfab.storage import gcs
    paths = gcs.fetch_many(gcs.glob("gs://bucket/datasets/v1/part-*.json"))  # local, verified
    gcs.upload(Path("model.zip"), "gs://bucket/models/deep_v1/run/model.zip")

Use it through netfab.storage, which sends every gs:// URI here.

Credentials are Google's Application Default Credentials, found in this order: the key file
named by GOOGLE_APPLICATION_CREDENTIALS, the user login written by `gcloud auth
application-default login`, then the service account of the GCE/GKE/Cloud Run machine.
STORAGE_EMULATOR_HOST (e.g. http://127.0.0.1:9023) sends every call to an emulator instead,
without credentials: the tests use gcp-storage-emulator that way.

Downloads land in the cache (storage.cache_dir()/gcs/<bucket>/<generation>/<object name>): an
object's generation changes whenever it is rewritten, so a cached file is never stale and a
second run downloads nothing. A download is written under a temporary name, checked against
the object's CRC32C (MD5 where an object has no CRC32C) and only then renamed into place. Uploads declare their CRC32C and
MD5 in the object's metadata, so Cloud Storage refuses a damaged upload; an object appears
only when its upload completes, so a reader never sees part of one.
"""
import base64
import fnmatch
import glob as globbing
import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import google_crc32c

from netfab.errors import NotFoundError, StorageError
from netfab.storage import atomic_path

log = logging.getLogger(__name__)
LOGIN_HINT = ("run `gcloud auth application-default login` (as a person), or set "
              "GOOGLE_APPLICATION_CREDENTIALS to a service account key file (as a machine); "
              "on GCE, GKE and Cloud Run the machine's service account is used")
DOWNLOAD_THREADS = 4  # objects fetched at once: 4 streams fill most links; more only adds contention
UPLOAD_CHUNK_BYTES = 16 << 20  # resumable upload chunk above 8 MiB (a multiple of 256 KiB)
DOWNLOAD_ATTEMPTS = 2  # a download that fails its checksum is fetched once more, then refused


@dataclass(frozen=True)
class GcsUri:
    bucket: str
    name: str  # object name or prefix, no leading slash

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def parse(uri: str) -> GcsUri:
    rest = str(uri)[len("gs://"):]
    bucket, _, name = rest.partition("/")
    if not bucket:
        raise StorageError(f"{uri}: a gs:// URI needs a bucket, e.g. gs://my-bucket/datasets/v1")
    return GcsUri(bucket, name)


# --- the client --------------------------------------------------------------------------

_client = None
_client_lock = threading.Lock()


def client():
    """One google.cloud.storage.Client per process, made on first use (clear error without credentials)."""
    global _client
    with _client_lock:
        if _client is None:
            import google.auth.exceptions
            from google.cloud import storage

            try:
                _client = storage.Client()
            except google.auth.exceptions.DefaultCredentialsError:
                raise StorageError(f"no Google Cloud credentials found for gs:// URIs: {LOGIN_HINT}") from None
        return _client


def _retry():
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY  # 429, 5xx and dropped connections: exponential backoff for up to 120 s


@contextmanager
def errors(uri, action: str):
    """Turn the client's exceptions into a StorageError that says what to do."""
    import google.auth.exceptions
    from google.api_core import exceptions as api
    from google.cloud.storage.exceptions import DataCorruption

    try:
        yield
    except api.NotFound:
        raise _not_found(uri) from None
    except (api.Forbidden, api.Unauthorized) as error:
        raise StorageError(f"permission denied to {action} {uri} (HTTP {error.code}: {error.message}); "
                           f"the account of your credentials needs a role on bucket "
                           f"gs://{parse(str(uri)).bucket} such as roles/storage.objectViewer (read) or "
                           f"roles/storage.objectCreator (write); to use another account, {LOGIN_HINT}") from None
    except google.auth.exceptions.RefreshError as error:
        raise StorageError(f"the Google Cloud credentials could not be used to {action} {uri} "
                           f"({error}); {LOGIN_HINT}") from None
    except google.auth.exceptions.DefaultCredentialsError:
        raise StorageError(f"no Google Cloud credentials found to {action} {uri}: {LOGIN_HINT}") from None
    except DataCorruption as error:
        raise StorageError(f"{uri}: checksum mismatch while trying to {action} it ({error})") from None
    except (api.GoogleAPICallError, api.RetryError) as error:
        raise StorageError(f"could not {action} {uri}: {error}") from None


def _not_found(uri) -> NotFoundError:
    location = parse(str(uri))
    try:
        bucket_exists = client().bucket(location.bucket).exists(retry=_retry())
    except Exception:  # the bucket check is a courtesy; the object is missing either way
        bucket_exists = True
    if not bucket_exists:
        return NotFoundError(f"bucket gs://{location.bucket} does not exist (for {uri}); check the "
                             f"name, or create it: gcloud storage buckets create gs://{location.bucket}")
    return NotFoundError(f"{uri} does not exist")


# --- listing -------------------------------------------------------------------------------

def glob(uri: str, keep=lambda name: True) -> list:
    """The objects (Blobs, with size, generation and checksums) that a URI names, sorted by name.

    A glob (`*`, `?`, `[...]`, not crossing `/`) matches object names; a URI without one is
    the object itself if it exists, else the folder under it: its direct children whose base
    name passes `keep`.
    """
    location = parse(uri)
    bucket = client().bucket(location.bucket)
    with errors(uri, "list"):
        if globbing.has_magic(location.name):
            prefix = location.name[:min(location.name.find(c) for c in "*?[" if c in location.name)]
            pattern = location.name.split("/")
            blobs = [b for b in bucket.list_blobs(prefix=prefix, retry=_retry())
                     if _glob_match(b.name.split("/"), pattern)]
        else:
            single = bucket.get_blob(location.name, retry=_retry()) if location.name else None
            if single is not None:
                return [single]
            prefix = location.name.rstrip("/") + "/" if location.name else ""
            blobs = [b for b in bucket.list_blobs(prefix=prefix, delimiter="/", retry=_retry())
                     if keep(b.name.rsplit("/", 1)[-1])]
            if not blobs and not bucket.exists(retry=_retry()):
                raise _not_found(uri)
    return sorted(blobs, key=lambda b: b.name)


def _glob_match(parts: list[str], pattern: list[str]) -> bool:
    return len(parts) == len(pattern) and all(fnmatch.fnmatchcase(p, q) for p, q in zip(parts, pattern))


def get(uri: str):
    """The Blob of one object (metadata only), or NotFoundError."""
    location = parse(uri)
    with errors(uri, "read"):
        blob = client().bucket(location.bucket).get_blob(location.name, retry=_retry())
    if blob is None:
        raise _not_found(uri)
    return blob


def delete(uri: str) -> None:
    location = parse(uri)
    with errors(uri, "delete"):
        client().bucket(location.bucket).blob(location.name).delete(retry=_retry())


# --- downloads into the cache ----------------------------------------------------------------

def cached_path(blob, cache: Path) -> Path:
    """Where one generation of an object lives in the cache (never outside it)."""
    root = (cache / "gcs" / blob.bucket.name).resolve()
    path = (root / str(blob.generation) / blob.name).resolve()
    if not path.is_relative_to(root) or not blob.name or blob.name.endswith("/"):
        raise StorageError(f"gs://{blob.bucket.name}/{blob.name}: this object name cannot be "
                           f"stored as a local file; rename the object")
    return path


def fetch_many(blobs: list, cache: Path, label: str = "") -> list[Path]:
    """Local, verified copies of `blobs` (same order): cached ones as they are, others downloaded."""
    paths = [cached_path(b, cache) for b in blobs]
    # A cached file was verified before it was renamed into place; its size is checked again.
    missing = [(b, p) for b, p in zip(blobs, paths) if not (p.is_file() and p.stat().st_size == b.size)]
    if not missing:
        if blobs:
            log.info("%s: %d object(s) already in the cache %s", label or blobs[0].name, len(blobs), cache)
        return paths
    total = sum(b.size for b, _ in missing)
    started = time.monotonic()
    with _progress(total, f"download {label or missing[0][0].name}") as bar:
        with ThreadPoolExecutor(min(DOWNLOAD_THREADS, len(missing))) as pool:
            for _ in pool.map(lambda item: _download(*item, bar), missing):
                pass
    seconds = max(time.monotonic() - started, 1e-6)
    log.info("downloaded %d object(s), %.1f MB in %.1f s (%.1f MB/s); %d already cached",
             len(missing), total / 1e6, seconds, total / 1e6 / seconds, len(blobs) - len(missing))
    return paths


def _download(blob, path: Path, bar) -> None:
    uri = f"gs://{blob.bucket.name}/{blob.name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            with open(partial, "wb") as stream, errors(uri, "download"):
                sink = _HashingWriter(stream, bar, md5=not blob.crc32c)
                # raw_download: the stored bytes, which the stored checksums describe (no gunzip).
                blob.download_to_file(sink, raw_download=True, checksum=None, retry=_retry())
                sink.close()
            problem = _checksum_problem(blob, sink)
            if problem is None:
                return  # verified: atomic_path renames it into place
            log.warning("%s: %s (attempt %d of %d)", uri, problem, attempt, DOWNLOAD_ATTEMPTS)
            bar.update(-sink.bytes)
        raise StorageError(f"{uri}: checksum mismatch after {DOWNLOAD_ATTEMPTS} downloads ({problem}); "
                           f"the object or the connection is damaged: rewrite the object or retry later")


class _HashingWriter:
    """A file-like sink that hashes and counts what passes through it (8 KiB at a time).

    CRC32C (in C) is what every object has; MD5, slower and missing on composite objects, is
    computed only for an object without a CRC32C.
    """

    PROGRESS_BYTES = 1 << 20  # the bar moves per MiB, not per chunk

    def __init__(self, stream, bar, md5: bool = False):
        self.stream, self.bar = stream, bar
        self.crc32c, self.md5 = google_crc32c.Checksum(), hashlib.md5() if md5 else None
        self.bytes = self.unreported = 0

    def write(self, data) -> int:
        self.stream.write(data)
        self.crc32c.update(data)
        if self.md5:
            self.md5.update(data)
        self.bytes += len(data)
        self.unreported += len(data)
        if self.unreported >= self.PROGRESS_BYTES:
            self.bar.update(self.unreported)
            self.unreported = 0
        return len(data)

    def close(self) -> None:
        self.bar.update(self.unreported)
        self.unreported = 0


def _checksum_problem(blob, sink: _HashingWriter) -> str | None:
    """What does not match the object's metadata, or None."""
    if blob.size is not None and sink.bytes != blob.size:
        return f"received {sink.bytes} bytes, the object has {blob.size}"
    if blob.crc32c:
        crc32c = base64.b64encode(sink.crc32c.digest()).decode()
        return None if crc32c == blob.crc32c else \
            f"CRC32C {crc32c} of the received bytes, the object's is {blob.crc32c}"
    if blob.md5_hash:
        md5 = base64.b64encode(sink.md5.digest()).decode()
        return None if md5 == blob.md5_hash else f"MD5 {md5} of the received bytes, the object's is {blob.md5_hash}"
    return None


class _progress:
    """A thread-safe byte progress bar on a terminal (tqdm); silent otherwise, the log says the rest."""

    def __init__(self, total: int, label: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                        disable=None, leave=False)
        self.lock = threading.Lock()

    def update(self, count: int) -> None:
        with self.lock:
            self.bar.update(count)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()


# --- uploads -------------------------------------------------------------------------------

def file_checksums(path: Path) -> tuple[str, str]:
    """(CRC32C, MD5) of a file, base64-encoded as Cloud Storage writes them."""
    crc32c, md5 = google_crc32c.Checksum(), hashlib.md5()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            crc32c.update(block)
            md5.update(block)
    return base64.b64encode(crc32c.digest()).decode(), base64.b64encode(md5.digest()).decode()


def upload(source: Path, uri: str, chunk_bytes: int = UPLOAD_CHUNK_BYTES) -> str:
    """Upload a file to `uri`: checksummed, retried, and visible only once complete.

    Cloud Storage creates an object when its upload finishes (one request up to 8 MiB, a
    resumable session of `chunk_bytes` chunks above), so a reader sees the old object or the
    new one, and a process killed mid-upload leaves no object at all. The CRC32C and MD5 go in
    the object's metadata, so the service refuses bytes that differ from the file.
    """
    location = parse(uri)
    if not location.name or location.name.endswith("/"):
        raise StorageError(f"{uri}: name the object to write, e.g. {uri.rstrip('/')}/model.zip")
    source = Path(source)
    blob = client().bucket(location.bucket).blob(location.name, chunk_size=chunk_bytes)
    blob.crc32c, blob.md5_hash = file_checksums(source)
    size, started = source.stat().st_size, time.monotonic()
    with errors(uri, "write"):
        # Retried even without a generation precondition: writing the same bytes twice is harmless.
        blob.upload_from_filename(str(source), checksum=None, retry=_retry())
    seconds = max(time.monotonic() - started, 1e-6)
    log.info("uploaded %s (%.1f MB in %.1f s, %.1f MB/s)", uri, size / 1e6, seconds, size / 1e6 / seconds)
    return str(location)
