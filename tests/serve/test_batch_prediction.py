"""`fab predict`: a file of rows in, `<id>,probability` out, the same scores as the SavedModel."""
import json

import numpy as np
import pandas as pd

from netfab import model_zip
from tests.helpers import fixture_rows, run_fab, write_ndjson


def test_fab_predict_writes_scores_next_to_ids_like_the_saved_model(trained_zip, tmp_path):
    from netfab.serve.saved_model import load_serving_function, predict_rows, training_means

    rows = fixture_rows(300)
    rows[5]["rating"] = None  # null numbers are filled with the training mean, as in training
    rows[5]["country"] = "ZZ"  # an unseen category goes to the OOV bucket
    write_ndjson(tmp_path / "a.json", rows[:200])
    write_ndjson(tmp_path / "b.json", rows[200:])
    result = run_fab("predict", f"--model={trained_zip}", f"--input={tmp_path}/*.json",
                     f"--output={tmp_path / 'out' / 'scores.csv'}", "--batch-rows=64")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "300 rows scored" in result.stdout and "scored 300 / 300 rows" in result.stderr
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert list(scores.columns) == ["impression_id", "probability"]
    assert scores["impression_id"].tolist() == [row["impression_id"] for row in rows]

    with model_zip.ModelZip(trained_zip) as package:
        function = load_serving_function(package.extract(tmp_path / "unpacked") / "saved_model")
        means = training_means(function, package.json("dataset_metadata.json"))
    direct = predict_rows(function, rows, means)  # nulls: the training mean
    np.testing.assert_allclose(scores["probability"], direct, atol=1e-6)


def test_fab_predict_writes_ndjson_when_asked(trained_zip, tmp_path):
    write_ndjson(tmp_path / "rows.json", fixture_rows(10))
    result = run_fab("predict", f"--model={trained_zip}", f"--input={tmp_path / 'rows.json'}",
                     f"--output={tmp_path / 'scores.ndjson'}")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in (tmp_path / "scores.ndjson").read_text().splitlines()]
    assert len(lines) == 10 and set(lines[0]) == {"impression_id", "probability"}


def test_fab_predict_refuses_a_wrong_type_and_writes_nothing(trained_zip, tmp_path):
    rows = fixture_rows(5)
    rows[3]["price"] = "cheap"
    write_ndjson(tmp_path / "rows.json", rows)
    output = tmp_path / "scores.csv"
    result = run_fab("predict", f"--model={trained_zip}", f"--input={tmp_path / 'rows.json'}", f"--output={output}")
    assert result.returncode == 1
    assert "rows.json:4: column 'price'" in result.stderr and "numbers or null" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()


def test_fab_predict_id_column_picks_the_column_written_beside_the_scores(trained_zip, tmp_path):
    rows = fixture_rows(10)
    write_ndjson(tmp_path / "rows.json", rows)
    result = run_fab("predict", f"--model={trained_zip}", f"--input={tmp_path / 'rows.json'}",
                     f"--output={tmp_path / 'scores.csv'}", "--id-column=item_id")
    assert result.returncode == 0, result.stderr[-2000:]
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == ["item_id", "probability"]
    assert scores["item_id"].tolist() == [row["item_id"] for row in rows]

    missing = run_fab("predict", f"--model={trained_zip}", f"--input={tmp_path / 'rows.json'}",
                      f"--output={tmp_path / 'other.csv'}", "--id-column=listing")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "no column(s) 'listing'" in missing.stderr and "--id-column" in missing.stderr


def test_fab_predict_reads_csv_and_parquet_as_it_reads_ndjson(trained_zip, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = fixture_rows(20)
    rows[4]["rating"] = None
    write_ndjson(tmp_path / "rows.json", rows)
    pd.DataFrame(rows).drop(columns=["tags"]).to_csv(tmp_path / "rows.csv", index=False)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "rows.parquet")
    outputs = {}
    for name in ("rows.json", "rows.csv", "rows.parquet"):
        result = run_fab("predict", f"--model={trained_zip}", f"--input={tmp_path / name}",
                         f"--output={tmp_path / (name + '.out.csv')}")
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[name] = pd.read_csv(tmp_path / (name + ".out.csv"))
        assert outputs[name]["impression_id"].tolist() == [row["impression_id"] for row in rows]
    np.testing.assert_allclose(outputs["rows.csv"]["probability"], outputs["rows.json"]["probability"], atol=1e-6)
    np.testing.assert_allclose(outputs["rows.parquet"]["probability"], outputs["rows.json"]["probability"], atol=1e-6)
