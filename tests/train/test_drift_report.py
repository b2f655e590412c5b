"""`fab drift`: a file of rows (no label needed) against a zip's reference profile; a zip trained
before profiles existed is one error line."""
import json

from data.fixture import write_fixture
from netfab.drift.profile import PROFILE_KEY
from netfab.drift.psi import WATCH
from netfab.train.drift_report import drift_report
from tests.helpers import rewritten_zip, run_fab


def test_fab_drift_prints_act_for_a_shifted_set_without_labels(trained_zip, tmp_path):
    shifted = tmp_path / "shifted.json"
    write_fixture(shifted, 2000, seed=11, shift=True)
    rows = [json.loads(line) for line in shifted.read_text().splitlines()]
    shifted.write_text("".join(json.dumps({k: v for k, v in row.items() if k != "booked"}) + "\n" for row in rows))

    done = run_fab("drift", f"--model={trained_zip}", f"--dataset={shifted}", f"--output={tmp_path / 'out'}")
    assert done.returncode == 0, done.stderr[-2000:]
    table = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:] if line and " " in line}
    assert table["score"][3] == "act" and table["price"][3] == "act" and table["country"][3] == "act"
    assert table["device"][3] == "stable"
    assert "act on score, country, price" in done.stdout
    record = json.loads((tmp_path / "out" / "drift.json").read_text())
    assert record["rows"] == 2000 and record["thresholds"] == {"watch": 0.1, "act": 0.25,
                                                               "measure": "population stability index"}
    assert (tmp_path / "out" / "drift.png").stat().st_size > 10_000


def test_rows_from_the_training_distribution_stay_stable(trained_zip, tmp_path):
    same = write_fixture(tmp_path / "same.json", 2000, seed=11).path
    report = drift_report(trained_zip, str(same), str(tmp_path / "out"))
    assert report.rows == 2000 and report.score.psi < WATCH
    assert all(f.level == "stable" for f in report.features), [(f.name, f.psi) for f in report.features]


def test_a_zip_without_a_profile_is_one_error_line(trained_zip, tmp_path):
    def without_profile(metadata):
        del metadata[PROFILE_KEY]
        return metadata

    old = rewritten_zip(trained_zip, tmp_path / "old.zip", {"dataset_metadata.json": without_profile})
    done = run_fab("drift", f"--model={old}", "--dataset=data/fixtures/sanity_2k.json", f"--output={tmp_path}")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {old} has no reference profile (trained before netfab wrote one into dataset_metadata.json), "
        f"so drift cannot be measured against it: retrain it with fab train"]
