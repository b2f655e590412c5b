"""The one training path: the zip it writes, honest splits, same seed same metrics, resume after a kill."""
import csv
import json
import signal
import subprocess
import time
import zipfile

import pytest

from data.fixture import FIXTURE_PATH, write_fixture
from netfab import model_zip
from netfab.train.loop import train
from tests.helpers import PROJECT, config_for, fab_command, user_env


def epochs_of(zip_uri):
    rows = list(csv.DictReader(model_zip.ModelZip(zip_uri).text("metrics.csv").splitlines()))
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_zip_holds_every_file_of_the_design(trained_zip):
    names = zipfile.ZipFile(trained_zip).namelist()
    for required in model_zip.REQUIRED:
        assert required in names
    assert any(n.startswith("tensorboard/") and "events" in n for n in names)
    assert len(model_zip.ModelZip(trained_zip).manifest["files"]) == len(names) - 1 - sum(
        n.endswith("/") for n in names)  # verified: every file but the manifest is listed


def test_zip_records_config_dataset_and_metrics(trained_zip):
    package = model_zip.ModelZip(trained_zip)
    config = package.json("config.json")
    assert config["variant"] == "deep_v1" and config["sources"]["epochs"] == "env"
    assert config["values"]["epochs"] == 3
    dataset = package.json("dataset_metadata.json")
    assert dataset["rows"] == {"total": 2000, "train": 1600, "validation": 200, "test": 200}
    assert dataset["fractions"] == {"validation": 0.1, "test": 0.1}
    assert dataset["cardinalities"]["item_id"] > 400
    assert 0.2 < dataset["label_rate"]["train"] < 0.5
    assert len(dataset["content_sha256"]) == 64
    epochs = epochs_of(trained_zip)
    assert [row["epoch"] for row in epochs] == ["1", "2", "3"]
    assert set(epochs[0]) == {"epoch", "train_loss", "train_auc", "validation_loss", "validation_auc",
                              "test_loss", "test_auc"}
    environment = package.json("environment.json")
    assert environment["tensorflow"].startswith("2.21") and environment["device"] == "CPU"


def test_validation_chooses_the_epoch_and_test_is_scored_once(trained_zip):
    result = model_zip.ModelZip(trained_zip).json("config.json")["result"]
    epochs = epochs_of(trained_zip)
    best = max(epochs, key=lambda row: float(row["validation_auc"]))
    assert result["best_epoch"] == int(best["epoch"])
    # the test figures appear once: on the chosen epoch's row, from the exact scoring at the end
    assert [row["epoch"] for row in epochs if row["test_auc"]] == [best["epoch"]]
    assert float(best["test_auc"]) == result["test_auc"] and 0.5 < result["test_auc"] <= 1
    assert abs(result["validation_auc"] - float(best["validation_auc"])) < 0.02  # exact vs Keras's


def test_zip_carries_the_core_and_the_front_ends_tables(trained_zip):
    shapes = model_zip.ModelZip(trained_zip).json("front_end.json")
    assert set(shapes) == {"vocabularies", "embedding_dims", "numeric_mean", "numeric_variance",
                           "text_vocabularies", "text_max_tokens", "task", "classes", "label_mean", "list_max_items",
                           "label_std"}
    assert "core.keras" in zipfile.ZipFile(trained_zip).namelist()


def test_metrics_png_and_csv_sit_beside_the_zip(trained_zip):
    run_dir = model_zip.storage.local_path(trained_zip).parent
    assert sorted(p.name for p in run_dir.iterdir()) == ["metrics.csv", "metrics.png", "model.zip"]
    assert (run_dir / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # two trainings
def test_same_seed_gives_the_same_metrics(tmp_path):
    runs = [train(config_for("deep_v1", epochs=2), str(FIXTURE_PATH), str(tmp_path / name))
            for name in ("a", "b")]
    assert epochs_of(runs[0].zip_uri) == epochs_of(runs[1].zip_uri)
    assert runs[0].metrics["test_auc"] == runs[1].metrics["test_auc"]


@pytest.mark.slow  # two trainings
def test_killed_run_resumes_instead_of_starting_over(tmp_path):
    dataset = tmp_path / "20k.json"
    write_fixture(dataset, 20000, seed=3)
    env = {"NET_EPOCHS": "5", "NET_EARLY_STOPPING_PATIENCE": "0", "NET_BATCH_SIZE": "32"}
    command = fab_command("train", f"--dataset={dataset}", f"--output={tmp_path / 'out'}")
    full_env = user_env(env)

    first = subprocess.Popen(command, cwd=PROJECT, env=full_env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    state = None
    while time.monotonic() < deadline and first.poll() is None:
        states = list((tmp_path / "out" / "deep_v1").glob("*/checkpoint/state.json"))
        if states and len(json.loads(states[0].read_text())["epochs"]) >= 2:
            state = states[0]
            break
        time.sleep(0.05)
    assert state is not None, first.communicate()[0][-2000:]
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    done_before_kill = len(json.loads(state.read_text())["epochs"])
    assert done_before_kill < 5 and not (state.parent.parent / "model.zip").exists()

    second = subprocess.run(command, cwd=PROJECT, env=full_env, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"after epoch {done_before_kill} of 5" in second.stderr
    zip_uri = second.stdout.split("model zip: ")[1].split()[0]
    assert model_zip.storage.local_path(zip_uri).parent == state.parent.parent  # same run folder
    assert [row["epoch"] for row in epochs_of(zip_uri)] == ["1", "2", "3", "4", "5"]


def test_raw_rows_through_the_saved_model_give_the_cores_scores_on_ids(trained_zip, tmp_path):
    """The zip's SavedModel (front end + core) on raw rows, against its core.keras on the ids
    the training front end makes of the same rows with the zip's front_end.json."""
    import numpy as np

    import models
    from data.loading import load_rows
    from data.preparation import DatasetShapes, encode
    from netfab.serve.saved_model import load_serving_function, predict_rows
    from tests.helpers import fixture_rows, write_ndjson

    package = model_zip.ModelZip(trained_zip)
    config = config_for("deep_v1").config
    shapes = DatasetShapes.from_dict(package.json("front_end.json"))
    folder = package.extract(tmp_path / "unpacked")
    rows = fixture_rows(64)
    rows[0] = {key: None for key in rows[0]} | {"booked": 0}  # a null in every column
    rows[1].update(item_id="never-seen", title="zzz qqq", price=None)
    ids = encode(load_rows([write_ndjson(tmp_path / "rows.json", rows)], config), config, shapes)
    on_ids = models.load(folder / "core.keras").predict(ids, verbose=0)
    on_raw = predict_rows(load_serving_function(folder / "saved_model"), rows)  # NaN for a null number
    assert np.isfinite(on_raw).all()
    np.testing.assert_allclose(on_raw, on_ids, atol=1e-6)
