"""Shared fixtures: real files in tmp folders, real training runs on small data, real servers on loopback."""
import dataclasses

import pytest

from data.fixture import FIXTURE_PATH
from tests.helpers import config_for


@pytest.fixture(scope="session")
def trained_zip(tmp_path_factory) -> str:
    """One real deep_v1 training run on the fixture, shared by the tests that read its zip."""
    from netfab.train.loop import train

    output = tmp_path_factory.mktemp("artifacts")
    return train(config_for("deep_v1", epochs=3), str(FIXTURE_PATH), str(output)).zip_uri


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    """The gcp-storage-emulator from PyPI, one process for the session, data on disk."""
    from tests.servers import GcsEmulator

    emulator = GcsEmulator(tmp_path_factory.mktemp("gcs-emulator"))
    yield emulator
    emulator.stop()


@dataclasses.dataclass
class Gcs:
    emulator: object
    bucket: str
    client: object  # google.cloud.storage.Client talking to the emulator directly

    def uri(self, name: str = "") -> str:
        return f"gs://{self.bucket}/{name}"

    def put(self, name: str, data: bytes) -> None:
        self.client.bucket(self.bucket).blob(name).upload_from_string(data)

    def names(self, prefix: str = "") -> list[str]:
        return sorted(b.name for b in self.client.list_blobs(self.bucket, prefix=prefix))


@pytest.fixture
def gcs(gcs_emulator, tmp_path, monkeypatch) -> Gcs:
    """A fresh bucket on the emulator; STORAGE_EMULATOR_HOST and a fresh NETFAB_CACHE_DIR for the
    test and the processes it starts."""
    from google.cloud import storage as gcs_client

    from netfab.storage import gcs as netfab_gcs
    from tests.servers import unique_bucket

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    monkeypatch.setenv("NETFAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(netfab_gcs, "_client", None)  # the next call makes a client for this endpoint
    client = gcs_client.Client()
    bucket = unique_bucket()
    client.create_bucket(bucket)
    return Gcs(gcs_emulator, bucket, client)


@pytest.fixture
def gcs_proxy(gcs, monkeypatch):
    """A FaultProxy in front of the emulator, made the endpoint netfab uses (the `gcs` client stays direct)."""
    from netfab.storage import gcs as netfab_gcs
    from tests.servers import FaultProxy

    proxy = FaultProxy(gcs.emulator.url)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
    monkeypatch.setattr(netfab_gcs, "_client", None)
    yield proxy
    proxy.stop()
