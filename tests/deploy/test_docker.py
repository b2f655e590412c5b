"""The training image for real: built by a real Docker engine, `fab ci` and `fab train` inside it.

.ci/run installs Debian's docker.io and starts dockerd. Docker Hub cannot be reached here, so the
image is built on tests/deploy/local_base_image.py's Debian base (built once per machine, then found by
tag). The GPU image is not built here; see test_gpu_training_asks_docker_for_every_gpu.
"""
import json
import re
import shutil
import signal
import subprocess
import time

import pytest

from netfab import model_zip
from netfab.deploy.containers import LABEL, container_spec
from netfab.environment import git_commit
from netfab.deploy.images import ImageError, build_image, docker_client
from tests.helpers import PROJECT, fab_command, project_copy, run_fab, user_env, write_ndjson
from tests.deploy.local_base_image import ensure_local_base_image

# Needs a real Docker engine and takes minutes: out of the everyday tier.
pytestmark = [pytest.mark.docker, pytest.mark.slow]
TAG = "netfab-test:cpu"
DEPENDENCY_STEP = "pip install -r requirements.txt"


@pytest.fixture(scope="module")
def client():
    return docker_client()  # fails (not skips) when no engine answers: .ci/run starts one


@pytest.fixture(scope="module")
def base_image(client):
    return ensure_local_base_image(client)


@pytest.fixture(scope="module")
def cpu_image(client, base_image):
    build_image("cpu", tag=TAG, base_image=base_image)
    return TAG


def _leftover_containers(client, task):
    return client.containers.list(all=True, filters={"label": f"{LABEL}={task}"})


def test_cpu_image_holds_code_and_config_runs_as_non_root_and_is_labelled(client, cpu_image):
    image = client.images.get(cpu_image)
    assert image.labels["org.opencontainers.image.revision"] == git_commit()
    assert image.labels["netfab.variants"] == ",".join(json.loads((PROJECT / "variant_config.json").read_text()))
    assert image.attrs["Config"]["Entrypoint"] == ["fab"]
    listing = client.containers.run(cpu_image, entrypoint=["sh", "-c"], remove=True, command=[
        "id -u; ls -a /app; find /app /home /tmp -name '*.zip' -o -name '*.json.gz'"
    ]).decode()
    uid, *files = listing.split()
    assert uid == "1000"
    assert {"fabfile.py", "netconfig.py", "variant_config.json", "setup.py"} <= set(files)
    assert not {".git", "tests", ".venv", "artifacts"} & set(files)
    assert not [f for f in files if f.endswith((".zip", ".json.gz"))]  # no dataset, no model
    assert "build-image" in client.containers.run(cpu_image, remove=True).decode()  # CMD: fab -l
    # fab serve reads OIP v2 binary strings with the C module the image compiled (not the numpy
    # fallback), and loads the string views op compiled beside it (no compiler in the image)
    assert client.containers.run(cpu_image, entrypoint=["python", "-c"], remove=True, command=[
        "from netfab.serve import oip_tensors, string_views; "
        "print(oip_tensors._byte_elements is not None, string_views.BUILT_BESIDE.exists(), "
        "string_views.load() is not None)"]).decode().split()[-3:] == ["True"] * 3


def test_fab_ci_docker_writes_verified_zips_to_the_mounted_folder(cpu_image, tmp_path):
    result = run_fab("ci", "--docker", f"--image={cpu_image}", f"--output={tmp_path}", "--variants=deep_v1,rnn_v1",
                     env={"NET_EPOCHS": "3"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ci passed: 2 variant(s)" in result.stdout
    zips = sorted(tmp_path.glob("*/*/model.zip"))
    assert [z.parent.parent.name for z in zips] == ["deep_v1", "rnn_v1"]
    for zip_path in zips:
        assert str(zip_path) in result.stdout  # /output/... shown as the caller's path
        assert (zip_path.parent / "metrics.png").stat().st_size > 0
        with model_zip.ModelZip(str(zip_path)) as package:  # verified
            assert package.json("environment.json")["git_commit"] == git_commit()  # recorded by the image build
            assert package.json("config.json")["values"]["epochs"] == 3


def test_training_runs_as_a_non_root_uid_the_image_does_not_know(client, cpu_image):
    # --docker runs as the caller's uid:gid; a Jenkins agent's uid has no home in the image.
    logs = client.containers.run(cpu_image, ["train", "--output=/tmp/out"], user="4242:4242",
                                 environment={"NET_EPOCHS": "1"}, remove=True, stderr=True).decode()
    assert re.search(r"^model zip: /tmp/out/deep_v1/\S+/model.zip$", logs, re.M), logs[-2000:]


def test_failing_training_in_the_container_exits_non_zero_with_its_error(client, cpu_image, tmp_path):
    bad = write_ndjson(tmp_path / "bad.json", ['{"country": "FR"'])
    result = run_fab("train", "--docker", f"--image={cpu_image}", f"--dataset={bad}",
                     f"--output={tmp_path / 'out'}", timeout=300)
    assert result.returncode == 1
    assert f"error: {bad}:1: malformed JSON" in result.stderr  # /input/bad.json shown as the host path
    assert not list((tmp_path / "out").iterdir())
    assert not _leftover_containers(client, "train")


@pytest.mark.parametrize("stop, code, why", [(signal.SIGINT, 130, "Ctrl-C"),
                                             (signal.SIGTERM, 143, "SIGTERM")])
def test_ctrl_c_or_sigterm_stops_and_removes_the_container(client, cpu_image, tmp_path, stop, code,
                                                           why):
    log = tmp_path / "fab.log"
    with open(log, "w") as stream:
        fab = subprocess.Popen(fab_command("train", "--docker", f"--image={cpu_image}",
                                           f"--output={tmp_path}"), cwd=PROJECT, stdout=stream,
                               stderr=subprocess.STDOUT,
                               env=user_env({"NET_EPOCHS": "200", "NET_EARLY_STOPPING_PATIENCE": "0",
                                              "NET_BATCH_SIZE": "32"}),  # longer than the test waits
                               # fab as a terminal starts it: a runner started in the background (`cmd &`
                               # in a script) ignores SIGINT, and its children would inherit that
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 180
            while "epoch 1/200 done in" not in log.read_text() and time.monotonic() < deadline:
                assert fab.poll() is None, log.read_text()[-2000:]
                time.sleep(0.5)
            assert "epoch 1/200 done in" in log.read_text(), "training never started"
            fab.send_signal(stop)
            returncode = fab.wait(timeout=60)
        finally:
            fab.kill()
    assert returncode == code, log.read_text()[-2000:]
    assert re.search(rf"stopping container \w+ \({why}\)", log.read_text())
    assert not _leftover_containers(client, "train")


def test_gpu_training_asks_docker_for_every_gpu(client, cpu_image, tmp_path):
    """Not exercised here (no GPU, no NVIDIA runtime, no CUDA base image): the GPU image itself and
    TensorFlow finding a GPU in it. Exercised: the device request docker-py sends, as the real
    engine recorded it, and what a user whose host lacks the NVIDIA toolkit is told."""
    container = client.containers.create(cpu_image, **container_spec(["train"], str(tmp_path),
                                                                     device="gpu", environ={}))
    try:
        requests = container.attrs["HostConfig"]["DeviceRequests"]
    finally:
        container.remove(force=True)
    # What `docker run --gpus all` sends: every GPU (-1), through a driver offering "gpu".
    assert [(r["Count"], r["Capabilities"], r["DeviceIDs"] or None) for r in requests] == [
        (-1, [["gpu"]], None)]
    result = run_fab("train", "--docker", "--device=gpu", f"--image={cpu_image}",
                     f"--output={tmp_path}", timeout=120)
    assert result.returncode == 1
    assert "Docker could not give the container a GPU" in result.stderr
    assert "NVIDIA Container Toolkit" in result.stderr
    assert not _leftover_containers(client, "train")


def test_code_change_rebuild_reuses_the_dependency_layers(client, cpu_image, base_image, tmp_path):
    context = project_copy(tmp_path / "context")
    with open(context / "netfab" / "ci.py", "a") as stream:
        stream.write("\n# a code change\n")
    tag = "netfab-test:cpu-code-change"
    try:
        built = build_image("cpu", tag=tag, base_image=base_image, context=context)
        print(f"\nrebuild after a code change: {built.seconds:.1f} s")
    finally:
        client.images.remove(tag, noprune=False)
    assert [s for s in built.cached_steps if DEPENDENCY_STEP in s], built.cached_steps
    assert not [s for s in built.cached_steps if "COPY . /app" in s]
    assert built.seconds < 60


def test_failed_build_reports_pips_own_error_line(base_image, tmp_path):
    shutil.copy(PROJECT / "Dockerfile.cpu", tmp_path)
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\n"
        "setup(name='netfab', install_requires=['tensorflow-cpu==0.0.1'])\n")
    with pytest.raises(ImageError) as failure:
        build_image("cpu", tag="netfab-test:broken", base_image=base_image, context=tmp_path)
    assert re.search(r"image build failed at Step \d+/\d+ : RUN python setup.py", str(failure.value))
    assert "ERROR: No matching distribution found for tensorflow-cpu==0.0.1" in str(failure.value)


@pytest.fixture
def local_registry(tmp_path):
    """Debian's docker-registry on a loopback port (dockerd trusts 127.0.0.0/8 over plain HTTP)."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'blobs'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    server = subprocess.Popen([shutil.which("docker-registry"), "serve", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # up to 10 s
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_push_sends_the_image_to_its_registry(client, base_image, local_registry):
    # The small base image stands in for a training image: pushing 2 GB through gzip would
    # cost minutes here, and push_image does not look at what the image holds.
    import io
    import json
    import urllib.request

    from netfab.deploy.images import push_image

    tag = f"{local_registry}/netfab-base:push-test"
    client.images.get(base_image).tag(tag)
    log = io.StringIO()
    try:
        push_image(client, tag, log)
    finally:
        client.images.remove(tag)
    assert f"pushed {tag}" in log.getvalue()
    with urllib.request.urlopen(f"http://{local_registry}/v2/netfab-base/tags/list", timeout=10) as r:
        assert json.load(r)["tags"] == ["push-test"]


def test_push_to_a_registry_that_does_not_answer_names_it(client, base_image):
    import io

    from netfab.deploy.images import push_image

    tag = "127.0.0.1:9/netfab-base:nowhere"  # port 9 (discard): nothing listens
    client.images.get(base_image).tag(tag)
    try:
        with pytest.raises(ImageError, match=r"push of 127\.0\.0\.1:9/netfab-base:nowhere failed: .*"
                                             r"check that the registry 127\.0\.0\.1:9 answers"):
            push_image(client, tag, io.StringIO())
    finally:
        client.images.remove(tag)
