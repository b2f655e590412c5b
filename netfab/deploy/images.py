"""Build the CPU and GPU training images from Dockerfile.cpu / Dockerfile.gpu through docker-py.

    from netfab.deploy.images import build_image
    built = build_image("cpu")                       # -> ImageBuild(tag="netfab:cpu", ...)
    build_image("gpu", tag="registry.example.com/netfab:gpu-1", push=True)

    fab build-image --device=cpu [--tag=T] [--base-image=B] [--push]

The build log streams as it happens, each Dockerfile step stamped with the elapsed time. A
failed build raises ImageError with the build's own error line (pip's "ERROR: ..." for instance)
and the step it happened in. pip inside the build uses this machine's index settings (see
`pip_build_args`), and the build runs on the host network so that it reaches the same index.
"""
import dataclasses
import os
import re
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from netfab.environment import PROJECT_ROOT
from netfab.errors import NetfabError, closest

DEVICES = ("cpu", "gpu")
DEFAULT_REPOSITORY = "netfab"
# pip settings forwarded into the build as build args (the Dockerfiles declare each as an ARG).
PIP_SETTINGS = {"index-url": "PIP_INDEX_URL", "extra-index-url": "PIP_EXTRA_INDEX_URL",
                "trusted-host": "PIP_TRUSTED_HOST", "cert": "PIP_CERT", "find-links": "PIP_FIND_LINKS"}


# The classic builder paints a step's stderr red; the log and the error message want plain text.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ImageError(NetfabError):
    """No Docker engine, a missing image, a failed build or push, a container that cannot start."""


@dataclasses.dataclass(frozen=True)
class ImageBuild:
    tag: str
    image_id: str
    seconds: float
    steps: int
    cached_steps: tuple[str, ...]  # the "Step i/n : ..." lines whose layer came from the cache


def docker_client():
    """A docker-py client for DOCKER_HOST (default: the local socket), or ImageError saying what to start."""
    import docker

    try:
        client = docker.from_env(timeout=600)
        client.ping()
        return client
    except docker.errors.DockerException as error:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise ImageError(f"no Docker engine answers at {where} ({error}); start it "
                         f"(`sudo systemctl start docker`, or `dockerd &`) or set DOCKER_HOST") from None


def default_tag(device: str) -> str:
    return f"{DEFAULT_REPOSITORY}:{check_device(device)}"


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise ImageError(f"--device={device} is not a device: use one of {', '.join(DEVICES)}"
                         f"{closest(device, DEVICES)}")
    return device


def dockerfile_for(device: str) -> str:
    return f"Dockerfile.{check_device(device)}"


def pip_build_args(pip_config: str | None = None) -> dict:
    """This machine's pip index settings as build args, keeping only what a build can use.

    `pip_config` is the text of `pip config list` (read from this machine when None). URLs are
    kept when they are http(s): a file:// index or a local find-links folder does not exist
    inside the build. `cert` is kept as a path: the base image must hold the CA bundle at that
    same path (the Debian base image of tests/deploy/local_base_image.py copies this machine's bundle
    to /etc/ssl/certs/ca-certificates.crt, where python:3.11-slim keeps its own too).
    """
    if pip_config is None:
        pip_config = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                                    capture_output=True, text=True, timeout=60).stdout
    found = {}
    for line in pip_config.splitlines():
        key, _, value = line.partition("=")
        setting = key.rsplit(".", 1)[-1]
        if setting in PIP_SETTINGS and value:
            # Environment (":env:") beats the config files, which pip lists first.
            if key.startswith(":env:") or setting not in found:
                found[setting] = value.strip().strip("'\"")
    args = {}
    for setting, value in found.items():
        if setting in ("cert", "trusted-host"):  # a path in the base image; host names
            kept = value.split()
        else:  # index and find-links locations: only those a build can reach
            kept = [u for u in value.split() if u.startswith(("http://", "https://"))]
        if kept:
            args[PIP_SETTINGS[setting]] = " ".join(kept)
    return args


def build_image(device: str, tag: str | None = None, base_image: str | None = None,
                push: bool = False, context: Path = PROJECT_ROOT, pip_args: dict | None = None,
                no_cache: bool = False, out=None) -> ImageBuild:
    """Build (and optionally push) the training image for `device`, streaming the log to `out`."""
    from netfab.config import read_variants
    from netfab.environment import git_commit

    out = out or sys.stdout
    tag = tag or default_tag(device)
    dockerfile = dockerfile_for(device)
    if not (Path(context) / dockerfile).is_file():
        raise ImageError(f"{dockerfile} not found in {context}: run from the project checkout")
    build_args = {"GIT_COMMIT": git_commit(), "VARIANTS": ",".join(read_variants()),
                  **(pip_build_args() if pip_args is None else pip_args)}
    if base_image:
        build_args["BASE_IMAGE"] = base_image
    client = docker_client()
    print(f"building {tag} from {dockerfile} (base {base_image or 'the Dockerfile default'})",
          file=out, flush=True)
    started = time.monotonic()
    stream = client.api.build(path=str(context), dockerfile=dockerfile, tag=tag, buildargs=build_args,
                              network_mode="host", rm=True, nocache=no_cache,
                              forcerm=True, decode=True)
    image_id, steps, cached = _follow_build(stream, started, out)
    seconds = time.monotonic() - started
    print(f"built {tag} ({image_id[:19]}) in {seconds:.0f} s, {len(cached)} of {steps} steps "
          f"from cache", file=out, flush=True)
    if push:
        push_image(client, tag, out)
    return ImageBuild(tag, image_id, seconds, steps, tuple(cached))


def _follow_build(stream, started: float, out):
    """Print the build log; return (image id, step count, cached steps) or raise the build's error."""
    recent = deque(maxlen=30)  # the step's last lines: where the real error line is
    image_id, steps, cached, step = "", 0, [], "before the first step"
    for chunk in stream:
        if "error" in chunk:
            raise ImageError(_build_failure(chunk["error"], step, recent))
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        text = _ANSI.sub("", chunk.get("stream", ""))
        for line in text.splitlines():
            if line.startswith("Step "):
                step, steps = line, steps + 1
                recent.clear()
                print(f"[{time.monotonic() - started:5.0f} s] {line}", file=out, flush=True)
                continue
            if line.strip() == "---> Using cache":
                cached.append(step)
            if line.strip():
                recent.append(line)
                print(f"    {line}", file=out, flush=True)
    if not image_id:
        raise ImageError(f"the build ended without an image ({step}); see the log above")
    return image_id, steps, cached


def _build_failure(error: str, step: str, recent) -> str:
    own = [line.strip() for line in recent if line.lstrip().lower().startswith(("error", "e: "))]
    detail = own[-1] if own else (recent[-1].strip() if recent else "")
    message = f"image build failed at {step}: {detail or error.strip()}"
    if detail:
        message += f" ({error.strip()})"
    return message


def push_image(client, tag: str, out) -> None:
    """Push `tag` to its registry (docker login first for a private one), one line per layer change."""
    repository, _, version = tag.rpartition(":") if ":" in tag.rsplit("/", 1)[-1] else (tag, "", "latest")
    print(f"pushing {tag}", file=out, flush=True)
    last_status = {}
    for chunk in client.api.push(repository, tag=version, stream=True, decode=True):
        if "error" in chunk:
            raise ImageError(f"push of {tag} failed: {chunk['error'].strip()} (check that the "
                             f"registry {repository.split('/')[0]} answers and `docker login` to it)")
        layer, status = chunk.get("id", ""), chunk.get("status", "")
        if status and status != "Pushing" and last_status.get(layer) != status:
            last_status[layer] = status
            print(f"    {layer + ': ' if layer else ''}{status}", file=out, flush=True)
    print(f"pushed {tag}", file=out, flush=True)
