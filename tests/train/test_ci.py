"""`fab ci`'s check of a zip: the SavedModel in a fresh process against model.keras."""
import pytest

from data.fixture import FIXTURE_PATH
from netfab.errors import NetfabError
from netfab.train.ci import check_zip, run_ci
from netfab.train.evaluate import Gate
from tests.helpers import fixture_rows, write_ndjson


def test_saved_model_and_model_keras_agree_on_rows_with_nulls(trained_zip, tmp_path):
    # Both are front end + core: a null number is the training mean and a null string the
    # out-of-vocabulary bucket in each, so the check passes on rows full of nulls (it once
    # compared the SavedModel's mean-filled scores with model.keras's NaN).
    rows = fixture_rows(8)
    rows[0] = {key: None for key in rows[0]} | {"booked": 0}
    for row in rows[1:]:
        row.update(price=None, rating=None, title=None, country=None)
    assert check_zip(trained_zip, str(write_ndjson(tmp_path / "nulls.json", rows)), min_auc=0.5) == []


def test_a_zip_below_the_auc_floor_is_reported(trained_zip):
    problems = check_zip(trained_zip, str(FIXTURE_PATH), min_auc=0.999)
    assert len(problems) == 1 and "below the sanity floor 0.999" in problems[0]


def test_fab_ci_gates_every_zip_against_a_baseline(trained_zip, tmp_path, monkeypatch):
    monkeypatch.setenv("NET_EPOCHS", "2")
    # A gate no model can pass (gain a whole unit of AUC on the baseline): the check names it.
    with pytest.raises(NetfabError, match=r"deep_v1: worse than the baseline .*--max-auc-drop=-1\)"):
        run_ci(str(tmp_path), str(FIXTURE_PATH), variants=["deep_v1"], baseline=trained_zip, gate=Gate(max_auc_drop=-1))
    assert list(tmp_path.glob("deep_v1/*/evaluation/evaluation.json"))  # written beside the zip, to look at
    with pytest.raises(NetfabError, match="does not exist"):  # before any training
        run_ci(str(tmp_path), str(FIXTURE_PATH), baseline=str(tmp_path / "missing.zip"))
