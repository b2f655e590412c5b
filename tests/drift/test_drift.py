"""Drift against a trained zip's reference profile: PSI stays low on new rows from the training
distribution and rises past the act threshold on a shifted set (data/fixture.py, shift=True), in
the server's DriftMonitor as in a direct count; the window forgets old traffic in bounded memory."""
import numpy as np
import pandas as pd
import pytest

from data.fixture import generate_chunks
from netfab.drift.monitor import DriftMonitor
from netfab.drift.profile import CATEGORICAL, NUMERIC, PROFILE_KEY, SCORE, TEXT, ReferenceProfile, vocabulary_bins
from netfab.drift.psi import ACT, WATCH, population_stability
from netfab.model_zip import ModelZip

ROWS = 2000


def fixture_rows(seed: int, shift: bool = False, rows: int = ROWS) -> list[dict]:
    frame = pd.concat(generate_chunks(rows, seed, shift))
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


@pytest.fixture(scope="module")
def profile(trained_zip) -> ReferenceProfile:
    with ModelZip(trained_zip) as package:
        return ReferenceProfile.from_zip(package)


@pytest.fixture(scope="module")
def score(trained_zip):
    """Rows -> the zip's scores, as fab serve computes them."""
    from netfab.serve.model import ServingModel

    model = ServingModel.load(trained_zip)
    return lambda rows: model.predict(model.inputs.columns_from_rows(rows))


def test_the_zip_carries_a_profile_of_every_feature_and_the_score(trained_zip, profile):
    with ModelZip(trained_zip) as package:
        metadata = package.json("dataset_metadata.json")
        config = package.json("config.json")["values"]
    assert PROFILE_KEY in metadata  # so in the manifest, verified with the rest
    assert set(profile.features) == {*config["categorical_columns"], *config["numeric_columns"], *config["text_columns"]}
    assert profile.rows == {"train": metadata["rows"]["train"], "validation": metadata["rows"]["validation"]}
    for bins in [*profile.features.values(), profile.score]:
        assert bins.fractions.sum() == pytest.approx(1.0) and len(bins.fractions) == len(bins.labels)
    assert profile.features["country"].labels[:3] == ["US", "GB", "DE"]  # most frequent first
    assert profile.features["price"].kind == NUMERIC and profile.features["title"].kind == TEXT
    # Score deciles of the validation split: a tenth of its scores in each bin.
    np.testing.assert_allclose(profile.score.fractions, 0.1, atol=0.02)


def test_drift_stays_low_on_new_rows_and_rises_past_act_on_a_shifted_set(profile, score):
    same, shifted = fixture_rows(seed=11), fixture_rows(seed=11, shift=True)
    calm = profile.drift(profile.count(profile.columns_from_rows(same), score(same)))
    moved = profile.drift(profile.count(profile.columns_from_rows(shifted), score(shifted)))
    assert max(calm.values()) < WATCH, calm
    assert min(moved[name] for name in ("price", "country", SCORE)) >= ACT, moved
    # What the shift does not touch stays calm.
    assert max(moved[name] for name in ("device", "season", "nights", "title")) < WATCH, moved


def test_the_monitor_fed_in_batches_counts_what_a_direct_count_does(profile, score):
    rows = fixture_rows(seed=11, shift=True)
    scores = score(rows)
    monitor = DriftMonitor(profile, window_rows=ROWS)
    for start in range(0, ROWS, 50):  # rows as fab serve would see them: small requests
        monitor.observe(rows[start:start + 50], scores[start:start + 50])
    measured = monitor.scores()
    direct = profile.drift(profile.count(profile.columns_from_rows(rows), scores))
    assert measured.rows == ROWS
    assert measured.score == pytest.approx(direct.pop(SCORE))
    assert measured.features == pytest.approx(direct)
    assert measured.features["country"] >= ACT


def test_the_window_forgets_old_traffic_and_stays_bounded(profile, score):
    monitor = DriftMonitor(profile, window_rows=4000, slots=8)
    shifted = fixture_rows(seed=11, shift=True)
    monitor.observe(profile.columns_from_rows(shifted), score(shifted))  # columns work as rows do
    assert monitor.scores().features["price"] >= ACT
    calm = fixture_rows(seed=13, rows=6000)
    calm_scores = score(calm)
    for start in range(0, len(calm), 250):
        monitor.observe(calm[start:start + 250], calm_scores[start:start + 250])
    after = monitor.scores()
    assert 4000 - 500 <= after.rows <= 4000 + 250  # the window, to within one slot and one batch
    assert max(after.features.values()) < WATCH and after.score < WATCH, after


def test_no_traffic_is_no_evidence():
    assert np.isnan(population_stability([0.5, 0.5], [0, 0]))
    assert population_stability([0.5, 0.5], [10, 10]) == 0.0
    assert population_stability([0.5, 0.5], [1, 0]) > ACT  # an empty bin is bounded, not infinite


def test_null_unseen_and_empty_values_fall_in_their_own_bins():
    country = vocabulary_bins(CATEGORICAL, ["US", "GB"])
    counts = country.count(np.array(["US", "US", "", None, "MX", "GB"], dtype=object))
    assert dict(zip(country.labels, counts)) == {"US": 2, "GB": 1, "(rest of vocabulary)": 0,
                                                  "(out of vocabulary)": 1, "(null)": 2}
    title = vocabulary_bins(TEXT, ["beach", "villa"])
    counts = title.count(np.array(["Villa near the BEACH!", "", None, "villa"], dtype=object))
    # tokens as the model's TextVectorization splits them: villa, near, the, beach / - / - / villa
    assert dict(zip(title.labels, counts)) == {"beach": 1, "villa": 2, "(rest of vocabulary)": 0,
                                                "(out of vocabulary)": 2, "(empty)": 2}


def test_a_number_falls_in_the_same_bin_from_a_training_file_or_a_request():
    from netfab.drift.profile import number_bins

    training = np.array([3.9, 4.0, 4.1, 4.1, 4.2, np.nan], dtype=np.float32)  # as data.loading reads them
    rating = number_bins(NUMERIC, training)
    assert rating.fractions[-1] == pytest.approx(1 / 6) and rating.labels[-1] == "(null)"
    from_json = np.array([3.9, 4.0, 4.1, 4.1, 4.2, None], dtype=np.float64)  # as a request brings them
    np.testing.assert_array_equal(rating.count(from_json), rating.count(training))
