"""Every registered architecture builds its numeric core from a config and DatasetShapes, trains a
step on the front end's arrays, and exported with the front end takes raw rows and gives the
core's scores."""
import numpy as np
import pytest

import models
from data.loading import load_rows
from data.preparation import encode, prepare
from models.frontend import build_front_end, raw_columns, with_front_end
from netfab.storage import dataset_files
from tests.helpers import config_for, fixture_rows, write_ndjson


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    return write_ndjson(tmp_path_factory.mktemp("d") / "d.json", fixture_rows(300))


def prepared_for(config, path):
    return prepare(load_rows(dataset_files(str(path)), config), config)


@pytest.mark.parametrize("network", list(models.REGISTRY))
def test_every_architecture_builds_and_trains_a_step(network, small_data):
    config = config_for("deep_v1", network=network, text_columns="title").config
    prepared = prepared_for(config, small_data)
    core = models.build(config, prepared.shapes)
    core.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = prepared.train.features, prepared.train.label
    before = [w.copy() for w in core.get_weights()]
    loss = core.train_on_batch({k: v[:32] for k, v in x.items()}, y[:32])
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, core.get_weights()))
    assert set(core.input) == set(x)  # the front end's arrays in, by column name
    assert all(i.dtype != "string" for i in core.inputs)  # no string reaches the core
    scores = core.predict(x, verbose=0)
    assert scores.shape == (len(y),) and ((scores > 0) & (scores < 1)).all()


@pytest.mark.parametrize("network", list(models.REGISTRY))
def test_raw_rows_through_the_front_end_give_the_cores_scores(network, tmp_path, small_data):
    config = config_for("deep_v1", network=network, text_columns="title").config
    prepared = prepared_for(config, small_data)
    core = models.build(config, prepared.shapes)
    exported = with_front_end(core, build_front_end(config, prepared.shapes), config)
    rows = fixture_rows(400)[300:]  # rows the front end was not fitted on: unseen values too
    rows[0] = {key: None for key in rows[0]} | {"booked": 0}  # a null in every column
    rows[1].update(title="", item_id="never-seen", price=None)
    on_ids = core.predict(encode(load_rows([write_ndjson(tmp_path / "r.json", rows)], config), config,
                                 prepared.shapes), verbose=0)
    on_raw = exported.predict(raw_columns(rows, config), verbose=0)
    assert np.isfinite(on_raw).all()
    np.testing.assert_allclose(on_raw, on_ids, atol=1e-6)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_rnn_cell_is_configurable(cell, small_data):
    config = config_for("rnn_v1", rnn_cell=cell).config
    core = models.build(config, prepared_for(config, small_data).shapes)
    text_branch = core.get_layer("per_distinct_title").layer  # run once per distinct title
    assert type(text_branch.get_layer("text_rnn")).__name__ == cell.upper()


def test_deep_without_text_has_no_text_input(small_data):
    config = config_for("deep_v1", text_columns="").config
    prepared = prepared_for(config, small_data)
    core = models.build(config, prepared.shapes)
    assert "title" not in core.input
    assert core.get_layer("embed_item_id").output_dim == prepared.shapes.embedding_dims["item_id"]


def test_registry_entries_point_at_modules_with_build():
    import importlib
    for name, entry in models.REGISTRY.items():
        assert callable(importlib.import_module(entry.module).build), name


@pytest.mark.parametrize("network", list(models.REGISTRY))
def test_empty_text_gives_a_finite_probability(network, small_data):
    # A null title becomes "" (the null policy): zero tokens must not mean 0/0.
    config = config_for("deep_v1", network=network).config
    prepared = prepared_for(config, small_data)
    exported = with_front_end(models.build(config, prepared.shapes),
                              build_front_end(config, prepared.shapes), config)
    x = raw_columns(fixture_rows(4), config)
    x["title"] = np.array(["", "", "!!!", "unknownword"], dtype=object)
    assert np.isfinite(exported.predict(x, verbose=0)).all()


def test_a_keras_file_saved_by_other_code_is_one_clear_error(trained_zip, tmp_path):
    """A model.keras naming a layer class this checkout no longer has (renamed since it was saved)."""
    import zipfile

    from netfab.errors import NetfabError
    from netfab.model_zip import ModelZip

    with ModelZip(trained_zip) as package:
        saved = package.extract(tmp_path / "unpacked") / "model.keras"
    renamed = tmp_path / "renamed.keras"
    with zipfile.ZipFile(saved) as old, zipfile.ZipFile(renamed, "w") as new:
        for name in old.namelist():
            data = old.read(name)
            new.writestr(name, data.replace(b'PerDistinct"', b'PerDistinctOld"') if name == "config.json" else data)
    with pytest.raises(NetfabError, match="cannot rebuild the Keras model.*Could not locate class 'PerDistinctOld'"):
        models.load(renamed)
