"""What a model was trained with: versions, git commit, device (environment.json in the zip)."""
import os
import platform
import socket
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the checkout: netconfig.py, data/, models/ (the one place it is found)


def git_commit() -> str:
    """HEAD of the project checkout, '+dirty' when it has uncommitted changes, or 'unknown'."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10).stdout
        return commit + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        # Inside a training image there is no .git: the image build recorded the commit.
        return os.environ.get("NETFAB_GIT_COMMIT", "unknown")


def describe_environment() -> dict:
    import keras
    import numpy
    import pandas
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "git_commit": git_commit(),
        "device": ", ".join(gpu.name for gpu in gpus) if gpus else "CPU",
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
    }
