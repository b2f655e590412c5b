"""The string views op (netfab/serve/string_views.c): built here with the machine's compiler,
the same strings as tf.strings.substr for any slices, slices outside the buffer refused, and
fab serve going on without it when it cannot be built."""
import logging
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from netfab.serve import string_views
from netfab.serve.columns import ByteSlices


@pytest.fixture(scope="module")
def op():
    loaded = string_views.load()
    assert loaded is not None, (
        "netfab/serve/string_views.c could not be built or loaded (the log says why): fab serve would "
        "copy every string value into TensorFlow instead; CI needs gcc")
    return loaded


def slices(rng: random.Random, size: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.array([rng.randrange(size + 1) for _ in range(count)], dtype=np.int64)
    # empty, inline (up to 22 bytes) and longer values, up to the buffer's end exactly
    lengths = np.array([min(size - start, rng.choice([0, rng.randrange(23), rng.randrange(size - start + 1)]))
                        for start in starts.tolist()], dtype=np.int64)
    return starts, lengths


def test_views_hold_the_same_strings_as_substr_whatever_the_slices(op):
    import tensorflow as tf

    rng = random.Random(7)
    for _ in range(50):
        text = "".join(rng.choice(["a", "Zürich ", "東京", "\x00", " ", "hôtel-de-ville "]) for _ in range(rng.randrange(1, 300)))
        buffer = tf.constant([text.encode()])
        starts, lengths = slices(rng, len(text.encode()), rng.randrange(0, 200))
        views = op.netfab_string_views(buffer, starts, lengths)
        assert views.shape == (len(starts),)
        assert views.numpy().tolist() == tf.strings.substr(buffer, starts, lengths).numpy().tolist()


@pytest.mark.parametrize("start, length", [(-1, 2), (3, -1), (11, 0), (8, 3), (0, 2 ** 62)])
def test_a_slice_outside_the_buffer_is_refused_not_read(op, start, length):
    import tensorflow as tf

    buffer = tf.constant([b"0123456789"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside the buffer"):
        op.netfab_string_views(buffer, np.array([0, start], np.int64), np.array([1, length], np.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="starts and lengths"):
        op.netfab_string_views(buffer, np.array([0, 1], np.int64), np.array([1], np.int64))


def test_byte_slices_become_views_only_for_a_caller_that_keeps_their_buffers(op):
    column = ByteSlices(b"FRDEGB", np.array([0, 2, 4]), np.array([2, 2, 2]))
    buffers = {}
    assert column.to_tensor(buffers, views=op).numpy().tolist() == [b"FR", b"DE", b"GB"]
    assert list(buffers) == [id(column.buffer)]
    with pytest.raises(ValueError, match="buffer_tensors"):
        column.to_tensor(views=op)


def test_the_op_is_compiled_into_the_cache_whole_and_later_processes_load_it(tmp_path, monkeypatch):
    import tensorflow as tf

    monkeypatch.setenv("NETFAB_CACHE_DIR", str(tmp_path))
    path = string_views.library_path()
    assert path.parent == tmp_path / "ops" and tf.__version__ in path.name
    string_views.build(path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left beside it
    # A new process (this one has the op registered already) loads that file without compiling.
    loaded = subprocess.run(
        [sys.executable, "-c", "from netfab.serve import string_views; op = string_views.load(); "
                               "print(hasattr(op, 'netfab_string_views'))"],
        env={**os.environ, "CC": "no-such-compiler"}, capture_output=True, text=True, timeout=120)
    assert loaded.stdout.strip() == "True", loaded.stderr[-2000:]


def test_without_a_compiler_serving_goes_on_with_copies_and_says_why(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NETFAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setattr(string_views, "BUILT_BESIDE", tmp_path / "absent.so")
    with caplog.at_level(logging.WARNING, logger=string_views.__name__):
        assert string_views._load() is None
    assert "no C compiler" in caplog.text and "apt-get install gcc" in caplog.text
    assert not (tmp_path / "ops").exists() or not any((tmp_path / "ops").iterdir())
