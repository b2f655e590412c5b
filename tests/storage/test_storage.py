"""Storage through URIs: local folders, and gs:// against the real GCS emulator on loopback.

Every gs:// test uses the official google-cloud-storage client pointed at gcp-storage-emulator
(STORAGE_EMULATOR_HOST); faults the emulator cannot produce (a 503, a 403, a stalled upload)
come from tests/servers.FaultProxy, a plain HTTP proxy between netfab and the emulator.
"""
import json
import subprocess
import sys

import pytest

from netfab import storage
from netfab.errors import DataError, NotFoundError, StorageError
from tests.helpers import PROJECT, fab_command, user_env

MEDIA_GET = r"alt=media"


def test_local_folder_ignores_sidecar_and_temporaries(tmp_path):
    for name in ("part-000000000001.json", "part-000000000000.json", "_dataset.json",
                 ".part-2.json.partial", "notes.txt"):
        (tmp_path / name).write_text("{}\n")
    assert [p.name for p in storage.dataset_files(str(tmp_path))] == [
        "part-000000000000.json", "part-000000000001.json"]


def test_atomic_path_renames_on_success_and_removes_on_failure(tmp_path):
    target = tmp_path / "trial.json"
    with storage.atomic_path(target) as partial:
        partial.write_text("whole")
        assert not target.exists()  # readers see nothing until the block ends
    assert target.read_text() == "whole"

    with pytest.raises(OSError, match="No space left"):
        with storage.atomic_path(target) as partial:
            partial.write_text("half")
            raise OSError("No space left on device")  # a writer that dies half-way
    assert target.read_text() == "whole"  # the old file, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["trial.json"]  # no temporary left behind


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NETFAB_CACHE_DIR", str(tmp_path / "mine"))
    assert storage.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("NETFAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert storage.cache_dir() == tmp_path / "xdg" / "netfab"


def test_upload_then_glob_and_download(gcs, tmp_path):
    shards = {f"ds/part-00000000000{i}.json": f'{{"row": {i}}}\n'.encode() * (i + 1) for i in range(3)}
    for name, data in shards.items():
        source = tmp_path / "upload"
        source.write_bytes(data)
        assert storage.publish_file(source, gcs.uri(name)) == gcs.uri(name)
    storage.publish_text('{"query": "q"}', gcs.uri("ds/_dataset.json"))
    gcs.put("ds/deeper/part-000000000009.json", b"{}\n")  # a glob does not cross "/"
    gcs.put("ds/readme.txt", b"not data")

    by_glob = storage.dataset_files(gcs.uri("ds/part-*.json"))
    by_folder = storage.dataset_files(gcs.uri("ds"))
    assert by_glob == by_folder
    assert [p.name for p in by_glob] == [name.split("/")[1] for name in sorted(shards)]
    assert [p.read_bytes() for p in by_glob] == [shards[n] for n in sorted(shards)]
    assert all(p.is_relative_to(storage.cache_dir()) for p in by_glob)
    assert json.loads(storage.fetch_file(gcs.uri("ds/_dataset.json")).read_text()) == {"query": "q"}


def test_second_run_downloads_nothing(gcs, gcs_proxy, tmp_path):
    source = tmp_path / "shard.json"
    source.write_bytes(b'{"a": 1}\n' * 1000)
    for i in range(3):  # through the proxy: the emulator's media links name the host they came by
        storage.publish_file(source, gcs.uri(f"ds/part-{i:012d}.json"))
    first = storage.dataset_files(gcs.uri("ds/part-*.json"))
    assert gcs_proxy.count("GET", MEDIA_GET) == 3
    second = storage.dataset_files(gcs.uri("ds/part-*.json"))
    assert second == first
    assert gcs_proxy.count("GET", MEDIA_GET) == 3  # a cache hit: listed, not downloaded


def test_rewritten_object_is_downloaded_again(gcs):
    gcs.put("model.zip", b"first")
    assert storage.fetch_file(gcs.uri("model.zip")).read_bytes() == b"first"
    gcs.put("model.zip", b"second")  # a new generation
    assert storage.fetch_file(gcs.uri("model.zip")).read_bytes() == b"second"


def test_checksum_mismatch_is_detected_and_nothing_is_cached(gcs):
    gcs.put("ds/part-000000000000.json", b'{"price": 100.0}\n')
    stored = gcs.emulator.stored_file(gcs.bucket, "ds/part-000000000000.json")
    stored.write_bytes(b'{"price": 999.0}\n')  # same size, other bytes: damaged at rest
    with pytest.raises(StorageError, match="checksum mismatch after 2 downloads.*CRC32C"):
        storage.dataset_files(gcs.uri("ds"))
    cached = [p for p in storage.cache_dir().rglob("*") if p.is_file()]
    assert cached == []  # neither the bad copy nor a partial one


def test_transient_error_on_upload_is_retried(gcs, gcs_proxy, tmp_path):
    gcs_proxy.add_rule("POST", r"/upload/storage/v1/b/.*uploadType=multipart", status=503)
    source = tmp_path / "metrics.csv"
    source.write_text("epoch,test_auc\n1,0.8\n")
    storage.publish_file(source, gcs.uri("run/metrics.csv"))
    statuses = [status for method, path, status in gcs_proxy.requests if "uploadType=multipart" in path]
    assert statuses == [503, 200]
    assert gcs.client.bucket(gcs.bucket).blob("run/metrics.csv").download_as_bytes() == source.read_bytes()


def test_permission_denied_says_which_role(gcs, gcs_proxy):
    gcs.put("model.zip", b"zip")
    gcs_proxy.add_rule("GET", r"/o/model.zip", status=403, times=10)
    with pytest.raises(StorageError, match=r"permission denied to read gs://.*/model.zip "
                                           r"\(HTTP 403.*roles/storage.objectViewer"):
        storage.fetch_file(gcs.uri("model.zip"))


def test_missing_object_and_missing_bucket_are_told_apart(gcs):
    with pytest.raises(NotFoundError, match=r"^gs://.*/nothing.zip does not exist$"):
        storage.fetch_file(gcs.uri("nothing.zip"))
    with pytest.raises(NotFoundError, match="bucket gs://no-such-bucket-here does not exist"):
        storage.fetch_file("gs://no-such-bucket-here/model.zip")
    with pytest.raises(DataError, match="matches no objects"):
        storage.dataset_files(gcs.uri("empty/part-*.json"))


def test_no_credentials_says_how_to_log_in(tmp_path):
    env = {k: v for k, v in user_env().items()
           if k not in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")}
    # No gcloud login in this config folder, and no probe of a cloud machine's metadata server.
    env.update(CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), NO_GCE_CHECK="true", HOME=str(tmp_path))
    result = subprocess.run(fab_command("inspect", "--model=gs://some-bucket/models/model.zip"),
                            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "no Google Cloud credentials found" in result.stderr
    assert "gcloud auth application-default login" in result.stderr
    assert "Traceback" not in result.stderr


def test_killed_upload_leaves_no_object(gcs, gcs_proxy, tmp_path):
    """A 9 MiB file goes up as a resumable upload of 256 KiB chunks; the process dies in chunk 3."""
    big = tmp_path / "model.zip"
    big.write_bytes(bytes(range(256)) * (9 * 4096))
    gcs_proxy.add_rule("PUT", r"/upload/storage/v1/b/.*upload_id=", action="stall", after=2)
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from netfab.storage import gcs; "
                               "gcs.upload(Path(sys.argv[1]), sys.argv[2], chunk_bytes=256 * 1024)",
         str(big), gcs.uri("run/model.zip")], cwd=PROJECT, env=user_env(), stderr=subprocess.PIPE)
    assert gcs_proxy.stalled.wait(60), child.stderr.read().decode()[-2000:]
    child.kill()
    child.wait(30)
    assert gcs_proxy.count("PUT", "upload_id=") == 3
    assert gcs.names("run/") == []  # two chunks were received, yet no object exists
    storage.publish_file(big, gcs.uri("run/model.zip"))  # the same upload, uninterrupted
    assert gcs.names("run/") == ["run/model.zip"]
    assert storage.fetch_file(gcs.uri("run/model.zip")).read_bytes() == big.read_bytes()

