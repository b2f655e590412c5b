"""`fab evaluate`: a worse candidate fails the gate in one error line, a better one passes; both
scored on the same rows (the candidate's test split by default), with slices, calibration and the
files written; a baseline that trained on those rows is refused."""
import json

import pytest

from data.fixture import FIXTURE_PATH
from netfab.errors import DataError
from netfab.model_zip import ModelZip
from netfab.train.evaluate import Gate, GateError, check_gate, evaluate_zips
from tests.helpers import config_for, rewritten_zip, run_fab


@pytest.fixture(scope="module")
def worse_zip(tmp_path_factory) -> str:
    """A tiny model barely trained (2 units, one epoch at a learning rate of 1e-5) on the same rows
    and split as the session's trained zip: a deliberately worse candidate."""
    from netfab.train.loop import train

    output = tmp_path_factory.mktemp("worse")
    return train(config_for("deep_v1", epochs=1, learning_rate=0.00001, hidden_units=2),
                 str(FIXTURE_PATH), str(output)).zip_uri


def test_fab_evaluate_fails_a_worse_candidate_in_one_error_line(worse_zip, trained_zip, tmp_path):
    done = run_fab("evaluate", f"--model={worse_zip}", f"--baseline={trained_zip}", f"--output={tmp_path}")
    assert done.returncode == 1, done.stdout[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == done.stderr.strip().splitlines()[-1]
    assert "fails the gate" in errors[0] and "below the baseline's" in errors[0] and "--max-auc-drop=0.005" in errors[0]
    assert "gate: FAILED" in done.stdout  # the table is printed before the verdict
    record = json.loads((tmp_path / "evaluation.json").read_text())
    assert record["passed"] is False and record["failures"]
    assert record["candidate"]["auc"] < record["baseline"]["auc"] - 0.005
    assert (tmp_path / "evaluation.png").stat().st_size > 10_000


def test_a_better_candidate_passes_on_the_same_rows_with_slices(worse_zip, trained_zip, tmp_path):
    report = evaluate_zips(trained_zip, worse_zip, slice_column="country", output_uri=str(tmp_path))
    check_gate(report)  # passes: no GateError
    assert report.failures == [] and report.candidate.auc > report.baseline.auc
    change = report.auc_change  # larger than chance even on 200 rows
    assert change["value"] == pytest.approx(report.candidate.auc - report.baseline.auc) and change["low"] > 0
    with ModelZip(trained_zip) as package:  # the candidate's test split, rebuilt: its recorded test figures
        recorded = package.json("config.json")["result"]
        assert report.rows == package.json("dataset_metadata.json")["rows"]["test"]
    assert report.candidate.auc == pytest.approx(recorded["test_auc"], abs=1e-3)
    assert report.candidate.log_loss == pytest.approx(recorded["test_loss"], abs=1e-3)
    assert sum(s["rows"] for s in report.slices) == report.rows
    assert report.slices[0]["value"] == "US" and report.slices[0]["candidate"]["auc"] is not None
    assert sum(b["rows"] for b in report.candidate.reliability) == report.rows
    assert 0 <= report.candidate.calibration_error < 0.5
    written = json.loads((tmp_path / "evaluation.json").read_text())
    assert written["passed"] and written["slice_column"] == "country" and len(written["slices"]) == len(report.slices)


def test_the_floors_gate_a_candidate_without_baseline(trained_zip, tmp_path):
    report = evaluate_zips(trained_zip, gate=Gate(min_auc=0.99, max_calibration_error=0.0), output_uri=str(tmp_path))
    assert len(report.failures) == 2 and "below --min-auc=0.99" in report.failures[0]
    with pytest.raises(GateError, match="fails the gate on 200 rows: AUC"):
        check_gate(report)


def test_a_dataset_is_scored_whole_and_a_numeric_slice_by_quartile(trained_zip, tmp_path):
    report = evaluate_zips(trained_zip, dataset_uri=str(FIXTURE_PATH), slice_column="price", output_uri=str(tmp_path))
    assert report.rows == 2000 and "every row" in report.rows_from
    assert [s["value"] for s in report.slices][-1].startswith(">") and len(report.slices) == 4
    assert any("flatter" in note for note in report.notes)  # it trained on most of these rows


def test_a_baseline_trained_on_the_candidates_test_rows_is_refused(worse_zip, trained_zip, tmp_path):
    # The same data split with another seed: some of the candidate's test rows trained the baseline.
    def reseed(config):
        config["values"]["seed"] = 7
        return config

    reseeded = rewritten_zip(worse_zip, tmp_path / "reseeded.zip", {"config.json": reseed})
    with pytest.raises(DataError, match=r"split another way \(seed 7 vs 42\)"):
        evaluate_zips(trained_zip, reseeded, output_uri=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # nothing written for a comparison that would not be fair
