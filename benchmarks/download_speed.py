"""The gs:// download path against a plain sequential download of the same objects, on the GCS emulator.

Usage: python benchmarks/download_speed.py [--shards 8] [--mb 16]

Starts gcp-storage-emulator on loopback, uploads --shards objects of --mb MB each, then times
  plain:    blob.download_to_filename for each object, one after the other (the client's
            defaults, which check the CRC32C too): what a hand-written script would do;
  netfab:   storage.dataset_files('gs://.../part-*.json') with an empty cache: listing, parallel
            downloads, CRC32C + MD5 check, atomic rename into the cache;
  cached:   the same call again, which only lists (the cache hit of a second training run).
The emulator is a single-threaded Python server, so it bounds both and netfab's parallel
downloads cannot gain here; the ratio shows what verification and caching cost. Each figure is
the best of --rounds alternating rounds.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers import GcsEmulator  # noqa: E402  (the tests' emulator fixture, reused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--mb", type=int, default=16, help="MB per shard")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds; the best one counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="netfab-bench-") as tmp:
        emulator = GcsEmulator(Path(tmp) / "emulator")
        try:
            os.environ.update(STORAGE_EMULATOR_HOST=emulator.url, NETFAB_CACHE_DIR=str(Path(tmp) / "cache"))
            from google.cloud import storage as gcs_client

            from netfab import storage

            client = gcs_client.Client()
            bucket = client.create_bucket("bench")
            line = b'{"impression_id": "imp-000000001", "price": 123.45, "title": "Cozy loft downtown"}\n'
            data = line * (args.mb * 1_000_000 // len(line))
            for i in range(args.shards):
                bucket.blob(f"ds/part-{i:012d}.json").upload_from_string(data)
            total_mb = args.shards * len(data) / 1e6

            # Best of --rounds, alternating, so that other load on the machine hits both alike.
            plain, netfab, cached = [], [], []
            for round_number in range(args.rounds):
                plain_dir = Path(tmp) / f"plain-{round_number}"
                plain_dir.mkdir()
                started = time.perf_counter()
                for blob in client.list_blobs("bench", prefix="ds/part-"):
                    blob.download_to_filename(plain_dir / blob.name.split("/")[-1])
                plain.append(time.perf_counter() - started)

                os.environ["NETFAB_CACHE_DIR"] = str(Path(tmp) / f"cache-{round_number}")  # cold
                started = time.perf_counter()
                files = storage.dataset_files("gs://bench/ds/part-*.json")
                netfab.append(time.perf_counter() - started)
                assert all(f.read_bytes() == data for f in files)

                started = time.perf_counter()
                storage.dataset_files("gs://bench/ds/part-*.json")
                cached.append(time.perf_counter() - started)
            plain, netfab, cached = min(plain), min(netfab), min(cached)
        finally:
            emulator.stop()
    print(f"{'download of':<44}{'MB':>8}{'seconds':>9}{'MB/s':>9}{'vs plain':>10}")
    for name, seconds in (("plain sequential blob.download_to_filename", plain),
                          ("netfab dataset_files, cold cache", netfab),
                          ("netfab dataset_files, second run (cache)", cached)):
        print(f"{name:<44}{total_mb:>8.0f}{seconds:>9.2f}{total_mb / seconds:>9.0f}{plain / seconds:>9.2f}x")


if __name__ == "__main__":
    main()
