"""The model zip is verified before it is trusted, unpacked safely, and published whole or not at all."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
import zipfile

import pytest

from netfab import storage

from netfab import model_zip
from netfab.errors import PackageError
from tests.helpers import PROJECT, run_fab, user_env


def rewrite_zip(source, target, change):
    """Copy a zip entry by entry; change(name, data) returns new bytes, or None to drop the entry."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            data = change(name, old.read(name))
            if data is not None:
                new.writestr(name, data)
    return target


def with_manifest_entry(source, target, name: str, data: bytes, compression=zipfile.ZIP_DEFLATED):
    """A copy of a model zip with one more member, listed in its manifest with the right checksum."""
    with zipfile.ZipFile(source) as old:
        manifest = json.loads(old.read(model_zip.MANIFEST))
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    rewrite_zip(source, target, lambda n, d: json.dumps(manifest).encode() if n == model_zip.MANIFEST else d)
    with zipfile.ZipFile(target, "a", compression) as archive:
        archive.writestr(name, data)
    return target


def test_tampered_file_is_detected(trained_zip, tmp_path):
    flip_last_byte = lambda d: d[:-1] + bytes([d[-1] ^ 1])  # same size: only the checksum can tell
    bad = rewrite_zip(trained_zip, tmp_path / "bad.zip",
                      lambda n, d: flip_last_byte(d) if n == "metrics.csv" else d)
    with pytest.raises(PackageError, match="metrics.csv does not match its manifest checksum"):
        model_zip.ModelZip(bad)


def test_a_file_of_another_size_is_detected(trained_zip, tmp_path):
    bad = rewrite_zip(trained_zip, tmp_path / "bad.zip",
                      lambda n, d: d + b"\n" if n == "metrics.csv" else d)
    with pytest.raises(PackageError, match="metrics.csv does not match its manifest size"):
        model_zip.ModelZip(bad)


def test_verification_streams_members_in_bounded_memory(trained_zip, tmp_path):
    big = with_manifest_entry(trained_zip, tmp_path / "big.zip", "saved_model/assets/big.bin",
                              bytes(96 << 20), zipfile.ZIP_STORED)  # like weights: stored, not deflated much
    tracemalloc.start()
    try:
        with model_zip.ModelZip(big) as package:
            assert "saved_model/assets/big.bin" in package.manifest["files"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"verifying held {peak >> 20} MiB at once"


def test_missing_file_is_detected(trained_zip, tmp_path):
    bad = rewrite_zip(trained_zip, tmp_path / "bad.zip",
                      lambda n, d: None if n == "model.keras" else d)
    with pytest.raises(PackageError, match="incomplete: missing model.keras"):
        model_zip.ModelZip(bad)


def test_unlisted_file_is_detected(trained_zip, tmp_path):
    bad = shutil.copyfile(trained_zip, tmp_path / "bad.zip")
    with zipfile.ZipFile(bad, "a") as archive:
        archive.writestr("extra.txt", "surprise")
    with pytest.raises(PackageError, match="does not list: extra.txt"):
        model_zip.ModelZip(bad)


def test_truncated_zip_is_reported(trained_zip, tmp_path):
    data = storage.local_path(trained_zip).read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(PackageError, match="not a readable zip"):
        model_zip.ModelZip(tmp_path / "cut.zip")


@pytest.mark.parametrize("name", ["../../escape.txt", "saved_model/../../escape.txt", "/tmp/escape.txt"])
def test_a_member_escaping_the_folder_is_refused_on_opening(trained_zip, tmp_path, name):
    evil = with_manifest_entry(trained_zip, tmp_path / "evil.zip", name, b"x")  # listed, right checksum
    with pytest.raises(PackageError, match="points outside the unpack folder"):
        model_zip.ModelZip(evil)
    result = run_fab("inspect", f"--model={evil}")  # fab inspect refuses it too, in one line
    assert result.returncode == 1 and "points outside the unpack folder" in result.stderr
    assert "manifest OK" not in result.stdout and "Traceback" not in result.stderr


def test_a_damaged_compressed_member_is_one_clear_message(trained_zip, tmp_path):
    """A flipped byte inside deflated data: an error naming the member, not a zlib traceback."""
    bad = storage.local_path(trained_zip).read_bytes()
    with zipfile.ZipFile(trained_zip) as archive:
        info = archive.getinfo("model.keras")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)  # the data
    damaged = bytearray(bad)
    for offset in range(start + 100, start + 110):
        damaged[offset] ^= 0xFF
    (tmp_path / "flipped.zip").write_bytes(bytes(damaged))
    with pytest.raises(PackageError, match=r"model.keras is damaged|model.keras does not match"):
        model_zip.ModelZip(tmp_path / "flipped.zip")
    result = run_fab("inspect", f"--model={tmp_path / 'flipped.zip'}")
    assert result.returncode == 1 and "model.keras" in result.stderr and "Traceback" not in result.stderr


def test_a_manifest_that_is_not_json_is_one_clear_message(trained_zip, tmp_path):
    bad = rewrite_zip(trained_zip, tmp_path / "bad.zip",
                      lambda n, d: b"{not json" if n == model_zip.MANIFEST else d)
    with pytest.raises(PackageError, match="MANIFEST.json is not valid JSON"):
        model_zip.ModelZip(bad)


def test_publish_is_all_or_nothing(tmp_path, monkeypatch):
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 1_000_000)
    target = tmp_path / "out" / "model.zip"

    def copy_then_die(src, dst):  # a copy that fails half-way, like a full disk
        with open(dst, "wb") as stream:
            stream.write(b"x" * 1000)
        raise OSError("No space left on device")

    monkeypatch.setattr(shutil, "copyfile", copy_then_die)
    with pytest.raises(OSError):
        storage.publish_file(source, str(target))
    assert list(target.parent.iterdir()) == []  # neither the zip nor a partial file
    monkeypatch.undo()
    storage.publish_file(source, str(target))
    assert target.read_bytes() == source.read_bytes()


def test_a_zip_write_killed_midway_is_cleaned_by_the_next_one(tmp_path):
    run = tmp_path / "run"
    (run / "package").mkdir(parents=True)
    (run / "package" / "weights.bin").write_bytes(os.urandom(64 << 20))  # random: slow to deflate
    temp = tmp_path / "system-temp"
    temp.mkdir()
    write = (f"from pathlib import Path; from netfab import model_zip; "
             f"model_zip.write_package(Path({str(run / 'package')!r}), {str(run / 'model.zip')!r})")
    writer = subprocess.Popen([sys.executable, "-c", write], cwd=PROJECT, env=user_env({"TMPDIR": str(temp)}))
    deadline = time.monotonic() + 60
    while not [p for p in run.glob(".model.zip.partial-*") if p.stat().st_size] and writer.poll() is None:
        assert time.monotonic() < deadline, "no partial zip appeared in the run folder"
        time.sleep(0.01)
    writer.kill()  # kill -9, mid-write
    writer.wait()
    left = list(run.glob(".model.zip.partial-*"))
    assert [p.name.split("-")[1] for p in left] == [str(writer.pid)]  # in the run's folder
    assert list(temp.iterdir()) == []  # and nothing under the system temp folder
    (run / "package" / f".config.json.partial-{writer.pid}-1").write_text("{")  # the killed run's, half written

    model_zip.write_package(run / "package", str(run / "model.zip"))  # the run resumed
    assert sorted(p.name for p in run.rglob("*")) == ["MANIFEST.json", "model.zip", "package", "weights.bin"]
    with zipfile.ZipFile(run / "model.zip") as archive:
        assert sorted(archive.namelist()) == ["MANIFEST.json", "weights.bin"]  # no partial zipped


def test_fab_inspect_prints_the_summary(trained_zip):
    result = run_fab("inspect", f"--model={trained_zip}")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "manifest OK" in out and "variant     deep_v1" in out
    assert "2000 (1600 train / 200 validation / 200 test)" in out and "tensorflow 2.21" in out
    assert "test AUC 0." in out


def test_fab_inspect_of_a_missing_zip_is_one_clear_line(tmp_path):
    result = run_fab("inspect", f"--model={tmp_path / 'none.zip'}")
    assert result.returncode == 1
    assert "error: model zip" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
