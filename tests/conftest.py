"""Shared fixtures: real files in tmp folders, real training runs on small data."""
import pytest

from data.fixture import FIXTURE_PATH
from tests.helpers import config_for


@pytest.fixture(scope="session")
def trained_zip(tmp_path_factory) -> str:
    """One real deep_v1 training run on the fixture, shared by the tests that read its zip."""
    from netfab.training import train

    output = tmp_path_factory.mktemp("artifacts")
    return train(config_for("deep_v1", epochs=3), str(FIXTURE_PATH), str(output)).zip_uri
