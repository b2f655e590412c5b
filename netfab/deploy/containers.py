"""Run a fab task inside the training image through docker-py: `fab train --docker`, `fab ci --docker`.

    from netfab.deploy.containers import run_fab_in_container
    code = run_fab_in_container(["train", "--variant=deep_v1"], output="artifacts",
                                dataset="data/shards", device="gpu")   # the container's exit code

What crosses into the container, and where:
  output folder            -> /output (read-write); the task gets --output=/output
  a local dataset          -> /input (read-only), its folder; the task gets --dataset=/input/...
  dataset cache            -> /cache (NETFAB_CACHE_DIR on the host, default ~/.cache/netfab)
  GOOGLE_APPLICATION_CREDENTIALS file -> /run/secrets/google-credentials.json (read-only)
  NET_* variables          -> the same variables (config level 3 works as on the host)
The container runs as the calling user's uid:gid, so the files it writes are the caller's.
Its output streams back live (stdout to stdout, stderr to stderr) with /output and /input paths
shown as host paths; it is removed afterwards and its exit code is returned; Ctrl-C or
SIGTERM (a Jenkins abort) stops it first, and the code is then 130 / 143.
"""
import os
import re
import signal
import sys
import threading
from pathlib import Path

from netfab import storage
from netfab.config import env_overrides
from netfab.deploy.images import ImageError, check_device, default_tag, docker_client

OUTPUT, INPUT, CACHE = "/output", "/input", "/cache"
CREDENTIALS = "/run/secrets/google-credentials.json"
STOP_SECONDS = 10  # SIGTERM, then SIGKILL after this long
LABEL = "netfab.task"  # on every container this module starts, to find leftovers


def container_spec(task_args: list[str], output: str, dataset: str | None = None,
                   device: str = "cpu", environ=os.environ) -> dict:
    """The keyword arguments of docker-py's containers.create for one fab task (image aside)."""
    import docker

    check_device(device)
    host_cache = storage.cache_dir(environ).expanduser().resolve()
    volumes = {str(host_cache): {"bind": CACHE, "mode": "rw"}}
    env = env_overrides(environ)
    env["NETFAB_CACHE_DIR"] = CACHE
    if _is_remote(output):
        command = [*task_args, f"--output={output}"]  # gs:// is written from inside
    else:
        volumes[str(_local(output).resolve())] = {"bind": OUTPUT, "mode": "rw"}
        command = [*task_args, f"--output={OUTPUT}"]

    if dataset:
        if _is_remote(dataset):
            command.append(f"--dataset={dataset}")  # gs:// and friends are read inside
        else:
            folder, inside = _dataset_mount(dataset)
            volumes[str(folder)] = {"bind": INPUT, "mode": "ro"}
            command.append(f"--dataset={INPUT}/{inside}" if inside else f"--dataset={INPUT}")

    credentials = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if credentials:
        path = Path(credentials).expanduser().resolve()
        if not path.is_file():
            raise ImageError(f"GOOGLE_APPLICATION_CREDENTIALS={credentials} is not a file: point it "
                             f"at a service-account key file, or unset it")
        volumes[str(path)] = {"bind": CREDENTIALS, "mode": "ro"}
        env["GOOGLE_APPLICATION_CREDENTIALS"] = CREDENTIALS

    spec = {"command": command, "environment": env, "volumes": volumes,
            "user": f"{os.getuid()}:{os.getgid()}", "labels": {LABEL: task_args[0]},
            "network_mode": "host"}  # gs:// and a local storage emulator, as from the host
    if device == "gpu":
        # What `docker run --gpus all` sends: every GPU, through the nvidia container runtime.
        spec["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    return spec


def _is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _local(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri).expanduser()


def _dataset_mount(dataset: str) -> tuple[Path, str]:
    """(host folder to mount, the dataset's path relative to it) for a file, folder or glob."""
    import glob

    path = Path(os.path.abspath(_local(dataset)))
    parts = path.parts
    magic = next((i for i, part in enumerate(parts) if glob.has_magic(part)), None)
    if magic is not None:  # a glob: mount the folder above its first wildcard
        return Path(*parts[:magic]), "/".join(parts[magic:])
    if path.is_dir():
        return path, ""
    if path.is_file():
        return path.parent, path.name
    raise ImageError(f"dataset {dataset} does not exist; pass --dataset=PATH (a file, a folder of "
                     f"shards or a glob)")


def run_fab_in_container(task_args: list[str], output: str, dataset: str | None = None,
                         device: str = "cpu", image: str | None = None, environ=os.environ,
                         stdout=None, stderr=None) -> int:
    """Run `fab TASK_ARGS` in the image; stream its output; return its exit code."""
    import docker

    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    image = image or default_tag(device)
    spec = container_spec(task_args, output, dataset, device, environ)
    for host in [storage.cache_dir(environ)] + ([] if _is_remote(output) else [_local(output)]):
        host.expanduser().mkdir(parents=True, exist_ok=True)
    client = docker_client()
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise ImageError(f"image {image} is not on this Docker engine: build it with "
                         f"`fab build-image --device={device}` (or pass --image=TAG)") from None

    container = client.containers.create(image, **spec)
    try:
        try:
            container.start()
        except docker.errors.APIError as error:
            raise ImageError(_start_failure(error, device)) from None
        # Paths the task prints (model zip, a dataset's bad line) shown as the caller's paths.
        host_paths = {v["bind"]: host for host, v in spec["volumes"].items() if v["bind"] in (OUTPUT, INPUT)}
        try:
            with _sigterm_as_interrupt():
                _stream(container, host_paths, stdout, stderr)
                return container.wait()["StatusCode"]
        except (KeyboardInterrupt, _Terminated) as stop:
            why = "SIGTERM" if isinstance(stop, _Terminated) else "Ctrl-C"
            print(f"\nstopping container {container.short_id} ({why})", file=stderr, flush=True)
            container.stop(timeout=STOP_SECONDS)
            return 128 + (signal.SIGTERM if isinstance(stop, _Terminated) else signal.SIGINT)
    finally:
        container.remove(force=True)


class _Terminated(Exception):
    """SIGTERM arrived (a Jenkins abort, `kill`): stop the container as Ctrl-C does."""


class _sigterm_as_interrupt:
    """While inside, SIGTERM raises _Terminated instead of killing us with the container left running."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(signum, frame):
        raise _Terminated()

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


def _start_failure(error, device: str) -> str:
    text = str(getattr(error, "explanation", None) or error)
    if device == "gpu" and ("gpu" in text.lower() or "nvidia" in text.lower()):
        return (f"Docker could not give the container a GPU ({text}); on a GPU host install the "
                f"NVIDIA driver and the NVIDIA Container Toolkit, then restart dockerd "
                f"(docs/docker.md), or train with --device=cpu")
    return f"the container did not start: {text}"


_MOUNT_PATH = re.compile(rf"(?<![\w./-])({OUTPUT}|{INPUT})(?=/|:|\s|$)")


def _stream(container, host_paths: dict, stdout, stderr) -> None:
    """Copy the container's stdout/stderr to ours, line by line, as they come."""
    pending = {1: b"", 2: b""}
    targets = {1: stdout, 2: stderr}
    for out_chunk, err_chunk in container.attach(stdout=True, stderr=True, stream=True, logs=True,
                                                 demux=True):
        for fd, chunk in ((1, out_chunk), (2, err_chunk)):
            if not chunk:
                continue
            *lines, pending[fd] = (pending[fd] + chunk).split(b"\n")
            for line in lines:
                _write(targets[fd], line, host_paths)
    for fd, rest in pending.items():
        if rest:
            _write(targets[fd], rest, host_paths)


def _write(target, line: bytes, host_paths: dict) -> None:
    text = line.decode("utf-8", "replace")
    text = _MOUNT_PATH.sub(lambda m: host_paths.get(m.group(1), m.group(1)), text)
    print(text, file=target, flush=True)
