"""Every registered architecture builds from a config and DatasetShapes, and trains a step."""
import numpy as np
import pytest

import models
from data.loading import load_rows
from data.preparation import features_and_labels, prepare
from netfab.storage import dataset_files
from tests.helpers import config_for, fixture_rows, write_ndjson


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    path = write_ndjson(tmp_path_factory.mktemp("d") / "d.json", fixture_rows(300))
    return path


@pytest.mark.parametrize("network", list(models.REGISTRY))
def test_every_architecture_builds_and_trains_a_step(network, small_data):
    env = {"network": network, "text_column": "title"}
    config = config_for("deep_v1", **env).config
    prepared = prepare(load_rows(dataset_files(str(small_data)), config).frame, config)
    model = models.build(config, prepared.shapes)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = features_and_labels(prepared.train, config)
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch({k: v[:32] for k, v in x.items()}, y[:32])
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert set(model.input) == set(x)  # raw columns in, by name
    scores = model.predict(x, verbose=0)
    assert scores.shape == (len(y),) and ((scores > 0) & (scores < 1)).all()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_rnn_cell_is_configurable(cell, small_data):
    config = config_for("rnn_v1", rnn_cell=cell).config
    prepared = prepare(load_rows(dataset_files(str(small_data)), config).frame, config)
    model = models.build(config, prepared.shapes)
    text_branch = model.get_layer("per_distinct_text").layer  # run once per distinct title
    assert type(text_branch.get_layer("text_rnn")).__name__ == cell.upper()


def test_deep_without_text_has_no_text_input(small_data):
    config = config_for("deep_v1", text_column="").config
    prepared = prepare(load_rows(dataset_files(str(small_data)), config).frame, config)
    model = models.build(config, prepared.shapes)
    assert "title" not in model.input
    assert model.get_layer("embed_item_id").output_dim == prepared.shapes.embedding_dims["item_id"]


def test_registry_entries_point_at_modules_with_build():
    import importlib
    for name, entry in models.REGISTRY.items():
        assert callable(importlib.import_module(entry.module).build), name


@pytest.mark.parametrize("network", list(models.REGISTRY))
def test_empty_text_gives_a_finite_probability(network, small_data):
    # A null title becomes "" (the null policy): zero tokens must not mean 0/0.
    config = config_for("deep_v1", network=network).config
    prepared = prepare(load_rows(dataset_files(str(small_data)), config).frame, config)
    model = models.build(config, prepared.shapes)
    x, _ = features_and_labels(prepared.test.head(4), config)
    x[config.text_column] = np.array(["", "", "!!!", "unknownword"], dtype=object)
    assert np.isfinite(model.predict(x, verbose=0)).all()
