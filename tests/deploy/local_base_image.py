"""A Python 3.11 base image made from Debian packages: the recipe for air-gapped image builds.

    python tests/deploy/local_base_image.py                    # builds netfab-base:bookworm-py311 if absent
    fab build-image --device=cpu --base-image=netfab-base:bookworm-py311

Where Docker Hub cannot be reached (this CI, an air-gapped site), `python:3.11-slim` cannot be
pulled. Debian's own packages can be: debootstrap lays out a minimal bookworm (whose python3 is
3.11, the project's version) with python3-venv and ca-certificates, and `docker import` turns
that folder into an image. The machine's CA bundle is copied in, so that pip inside an image
build trusts whatever this machine trusts (a TLS-inspecting proxy in front of the package index).

Needs root (debootstrap), the `debootstrap` Debian package and a running Docker engine. The
image is built once per tag: later calls find it and return at once.
"""
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TAG = "netfab-base:bookworm-py311"
SUITE = "bookworm"  # Debian 12: python3 is 3.11
PACKAGES = ("python3", "python3-venv", "ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

log = logging.getLogger("netfab.base_image")


def ensure_local_base_image(client=None, tag: str = TAG) -> str:
    """The tag of the local base image, built with debootstrap only when the engine lacks it."""
    import docker

    client = client or docker.from_env()
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed: apt-get install -y debootstrap")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="netfab-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log.info("debootstrap %s with %s (about 2 minutes)", SUITE, ", ".join(PACKAGES))
        subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                        SUITE, str(rootfs)], check=True, stdout=subprocess.DEVNULL)
        if HOST_CA_BUNDLE.is_file():
            shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
        # Downloaded .debs and package lists are dead weight in an image.
        for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / folder).glob("*"):
                if entry.is_file():
                    entry.unlink()
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        log.info("docker import %s", tag)
        repository, _, version = tag.partition(":")
        client.api.import_image_from_file(str(archive), repository=repository, tag=version or "latest",
                                          changes=["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'])
    log.info("base image %s ready in %.0f s", tag, time.monotonic() - started)
    return tag


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    print(ensure_local_base_image(tag=sys.argv[1] if len(sys.argv) > 1 else TAG))
