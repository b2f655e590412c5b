"""How much the layer cache saves: a cold CPU image build against a rebuild with only code changed.

Usage: python benchmarks/image_build_cache.py [--base-image=netfab-base:bookworm-py311]

Builds Dockerfile.cpu from a copy of this checkout twice: first with the cache off (every
dependency downloaded and installed), then after appending a comment to netfab/train/ci.py, which
must reuse the dependency layers and redo only `COPY . /app` and what follows. Needs a running
Docker engine and the base image (python tests/deploy/local_base_image.py builds the default one);
the pip download in the cold build depends on the network, so run it a few times.
"""
import argparse
import io
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netfab.deploy.images import build_image, docker_client  # noqa: E402
from tests.helpers import project_copy  # noqa: E402
from tests.deploy.local_base_image import TAG as LOCAL_BASE, ensure_local_base_image  # noqa: E402

TAG = "netfab-bench:cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", default=LOCAL_BASE)
    args = parser.parse_args()
    client = docker_client()
    if args.base_image == LOCAL_BASE:
        ensure_local_base_image(client)
    with tempfile.TemporaryDirectory(prefix="netfab-bench-") as tmp:
        context = project_copy(Path(tmp))
        log = io.StringIO()  # the build logs are long; the table is the point
        cold = build_image("cpu", tag=TAG, base_image=args.base_image, context=context,
                           no_cache=True, out=log)
        with open(context / "netfab" / "ci.py", "a") as stream:
            stream.write("\n# benchmark: a code change\n")
        warm = build_image("cpu", tag=TAG, base_image=args.base_image, context=context, out=log)
    client.images.remove(TAG)
    print(f"{'build':<28} {'seconds':>8} {'cached steps':>13} {'vs cold':>8}")
    for name, built in (("cold (no cache)", cold), ("only code changed", warm)):
        print(f"{name:<28} {built.seconds:>8.1f} {len(built.cached_steps):>6} of {built.steps:<4}"
              f" {built.seconds / cold.seconds:>8.3f}")


if __name__ == "__main__":
    main()
