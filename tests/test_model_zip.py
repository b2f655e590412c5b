"""The model zip is verified before it is trusted, unpacked safely, and published whole or not at all."""
import shutil
import zipfile

import pytest

from netfab import storage

from netfab import model_zip
from netfab.errors import PackageError
from tests.helpers import run_fab


def rewrite_zip(source, target, change):
    """Copy a zip entry by entry; change(name, data) returns new bytes, or None to drop the entry."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            data = change(name, old.read(name))
            if data is not None:
                new.writestr(name, data)
    return target


def test_tampered_file_is_detected(trained_zip, tmp_path):
    bad = rewrite_zip(trained_zip, tmp_path / "bad.zip",
                      lambda n, d: d + b"\n" if n == "metrics.csv" else d)
    with pytest.raises(PackageError, match="metrics.csv does not match its manifest checksum"):
        model_zip.verify_package(bad)


def test_missing_file_is_detected(trained_zip, tmp_path):
    bad = rewrite_zip(trained_zip, tmp_path / "bad.zip",
                      lambda n, d: None if n == "model.keras" else d)
    with pytest.raises(PackageError, match="incomplete: missing model.keras"):
        model_zip.verify_package(bad)


def test_unlisted_file_is_detected(trained_zip, tmp_path):
    bad = shutil.copyfile(trained_zip, tmp_path / "bad.zip")
    with zipfile.ZipFile(bad, "a") as archive:
        archive.writestr("extra.txt", "surprise")
    with pytest.raises(PackageError, match="does not list: extra.txt"):
        model_zip.verify_package(bad)


def test_truncated_zip_is_reported(trained_zip, tmp_path):
    data = storage.local_path(trained_zip).read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(PackageError, match="not a readable zip"):
        model_zip.verify_package(tmp_path / "cut.zip")


def test_extract_refuses_paths_outside_the_folder(trained_zip, tmp_path):
    evil = shutil.copyfile(trained_zip, tmp_path / "evil.zip")
    with zipfile.ZipFile(evil, "a") as archive:
        archive.writestr("../../escape.txt", "x")
    manifest = model_zip.read_json_member(evil, "MANIFEST.json")
    manifest["files"]["../../escape.txt"] = {"sha256": __import__("hashlib").sha256(b"x").hexdigest(), "bytes": 1}
    fixed = rewrite_zip(evil, tmp_path / "evil2.zip", lambda n, d: __import__("json").dumps(manifest).encode()
                        if n == "MANIFEST.json" else d)
    with pytest.raises(PackageError, match="points outside the unpack folder"):
        model_zip.extract_package(fixed, tmp_path / "unpacked")
    assert not (tmp_path / "escape.txt").exists()


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
