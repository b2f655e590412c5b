"""`fab ci`'s check of a zip: the SavedModel in a fresh process against model.keras."""
from netfab.train.ci import check_zip
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
    from data.fixture import FIXTURE_PATH

    problems = check_zip(trained_zip, str(FIXTURE_PATH), min_auc=0.999)
    assert len(problems) == 1 and "below the sanity floor 0.999" in problems[0]
