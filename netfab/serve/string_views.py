"""String tensors that point into the request bodies: the NetfabStringViews op (string_views.c).

    from netfab.serve import string_views
    op = string_views.load()      # None when it cannot be built: tf.strings.substr copies instead
    views = op.netfab_string_views(buffer, starts, lengths)   # buffer: tf.string [1]; int64 [n] each

The op is TensorFlow C API code, so it must be compiled against the installed TensorFlow, whose
wheel carries the headers: setup.py cannot (pip builds netfab before it installs TensorFlow), so
the first load compiles it with the machine's C compiler (`cc`, well under a second) into the
cache folder, under a name that holds the TensorFlow version and the source's hash: every later
process, and every worker of fab serve, loads that file. The Docker images compile it at build
(Dockerfile.cpu/.gpu, step 2) beside this module, where it is found first. Without a compiler
fab serve logs one warning and copies the strings as before.

A view is valid only while the buffer tensor it points into is alive: only a caller that holds
the buffers for as long as it uses the views may ask for them (columns.ByteSlices.to_tensor,
netfab.serve.saved_model.FlatCaller, which drops both when the model call returns).
"""
import hashlib
import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path

from netfab import storage

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("string_views.c")
BUILT_BESIDE = Path(__file__).with_name("_string_views.so")  # where the Docker images compile it

_lock = threading.Lock()
_loaded: dict = {}  # "op": the loaded op library, or None once it could not be had


def load():
    """The op library (its function: netfab_string_views), or None if it cannot be built or loaded."""
    with _lock:
        if "op" not in _loaded:
            _loaded["op"] = _load()
        return _loaded["op"]


def library_path() -> Path:
    """Where the compiled op lives for this TensorFlow and this source."""
    import tensorflow as tf

    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    return storage.cache_dir() / "ops" / f"string_views-tf{tf.__version__}-{digest}.so"


def build(output: Path) -> None:
    """Compile string_views.c against the installed TensorFlow into `output` (whole or absent)."""
    import tensorflow as tf

    name = os.environ.get("CC") or "cc"
    compiler = shutil.which(name)
    if compiler is None:
        raise OSError(f"no C compiler ({name}) on PATH")
    output.parent.mkdir(parents=True, exist_ok=True)
    with storage.atomic_path(output) as partial:
        made = subprocess.run([compiler, "-O2", "-shared", "-fPIC", f"-I{tf.sysconfig.get_include()}",
                               str(SOURCE), "-o", str(partial), *tf.sysconfig.get_link_flags()],
                              capture_output=True, text=True)
        if made.returncode != 0:
            raise OSError(f"{compiler} could not compile {SOURCE}: {made.stderr.strip()[-800:]}")


def _load():
    import tensorflow as tf

    path = BUILT_BESIDE
    try:
        if not path.exists():
            path = library_path()
            if not path.exists():
                build(path)
                log.info("compiled %s into %s", SOURCE.name, path)
        return tf.load_op_library(str(path))
    except (OSError, tf.errors.NotFoundError) as error:
        # One warning, with what each cause needs: the server goes on with copies either way.
        log.warning("string views unavailable (%s): fab serve goes on copying each string value into "
                    "TensorFlow, which is slower. To have them: a C compiler (apt-get install gcc), a "
                    "writable cache folder (%s, set by $%s), and, if %s exists but will not load, delete "
                    "it to have it compiled again", error, storage.cache_dir(), storage.CACHE_ENV, path)
        return None
