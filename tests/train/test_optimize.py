"""`fab optimize` on the fixture model: each form is a verified zip that serves like the original,
a form that loses test AUC is refused with nothing written, and `fab` prints the table."""
import numpy as np
import pytest

from netfab.errors import NetfabError
from netfab.model_zip import OPTIMIZATION, ModelZip
from netfab.train.optimize import optimize_zip
from tests.helpers import PROJECT, fixture_rows, run_fab, write_ndjson

# How far each form may move a probability from the original's: xla computes the same float32
# arithmetic in another order; int8 and float16 round the weights.
SCORE_TOLERANCE = {"xla": 1e-5, "int8": 0.01, "float16": 0.005}


@pytest.fixture(scope="module")
def original_scores(trained_zip):
    from netfab.serve.model import ServingModel

    model = ServingModel.load(trained_zip)
    rows = fixture_rows(300)
    return rows, model.predict(model.inputs.columns_from_rows(rows))


@pytest.mark.parametrize("form", ["xla", "int8", "float16"])
def test_each_form_is_a_verified_zip_that_serves_like_the_original(form, trained_zip, original_scores, tmp_path):
    from netfab.serve.model import ServingModel

    report = optimize_zip(trained_zip, str(tmp_path / "model.zip"), to=form, latency_rounds=1)

    with ModelZip(report.output) as package:  # verified like any zip, optimization.json in its manifest
        record = package.json(OPTIMIZATION)
        assert OPTIMIZATION in package.manifest["files"]
        assert f"optimized   {form} of {trained_zip}" in package.describe()
    assert record["form"] == form and record["source"]["uri"] == trained_zip
    original, optimized = record["original"], record["optimized"]
    assert abs(optimized["test_auc"] - original["test_auc"]) <= 0.002
    with ModelZip(trained_zip) as trained:  # the split it reported on, rebuilt
        assert original["test_auc"] == pytest.approx(trained.json("config.json")["result"]["test_auc"], abs=1e-3)
    for figures in (original, optimized):
        assert figures["zip_bytes"] > 0 and figures["single_row_ms"] > 0 and figures["batch_ms"] > 0

    # What fab serve and fab predict load; one row, an odd count and a batch (xla pads each to a
    # power of two) score like the original zip.
    model = ServingModel.load(report.output)
    assert model.optimized_form == form
    sizes = {rows for rows, _ in model.warmup_calls(max_batch_rows=16384)}
    # xla compiles per power-of-two batch size: fab serve's warm-up pays for each one, not a request
    assert ({1 << power for power in range(15)} <= sizes) == (form == "xla") and max(sizes) <= 16384
    rows, expected = original_scores
    for count in (1, 3, len(rows)):
        scores = model.predict(model.inputs.columns_from_rows(rows[:count]), single_threaded=count == 1)
        np.testing.assert_allclose(scores, expected[:count], atol=SCORE_TOLERANCE[form])


def test_a_form_losing_more_test_auc_than_allowed_is_refused_and_nothing_is_written(trained_zip, tmp_path):
    # A tolerance of -1 asks each form to gain a whole unit of AUC: none can.
    output = tmp_path / "out" / "model.zip"
    done = run_fab("optimize", f"--model={trained_zip}", f"--output={output}", "--to=int8", "--max-auc-drop=-1")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == done.stderr.strip().splitlines()[-1]
    assert "int8 loses" in errors[0] and "--max-auc-drop=-1" in errors[0] and "no zip written" in errors[0]
    assert not output.parent.exists() or not list(output.parent.iterdir())


def test_fab_optimize_prints_every_form_beside_the_original_and_writes_the_fastest(trained_zip, tmp_path):
    output = tmp_path / "model-fast.zip"
    done = run_fab("optimize", f"--model={trained_zip}", f"--output={output}")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].split()[:4] == ["form", "zip", "saved_model", "test"]
    assert [line.split()[0] for line in lines[1:5]] == ["original", "xla", "int8", "float16"]
    written = [line for line in lines if line.endswith("<- written")]
    assert len(written) == 1 and lines[-1] == f"written: {output} ({written[0].split()[0]})"
    with ModelZip(str(output)) as package:
        assert package.json(OPTIMIZATION)["form"] == written[0].split()[0]


@pytest.mark.parametrize("args, message", [
    (["--to=int9"], "--to='int9' is not a form (did you mean 'int8'?)"),
    (["--dataset=OTHER"], "dataset OTHER is not the data"),  # its test split would be other rows
])
def test_optimize_mistakes_are_found_before_tensorflow_loads(trained_zip, tmp_path, args, message):
    # A tensorflow that cannot be imported: the mistake must be reported without reaching it.
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("raise ImportError('tensorflow was imported')\n")
    other = str(write_ndjson(tmp_path / "other.json", fixture_rows(500)))
    args = [arg.replace("OTHER", other) for arg in args]
    done = run_fab("optimize", f"--model={trained_zip}", f"--output={tmp_path / 'model.zip'}", *args,
                   env={"PYTHONPATH": f"{tmp_path}:{PROJECT}"})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {message.replace('OTHER', other)}"), \
        done.stderr[-1000:]
    assert not (tmp_path / "model.zip").exists()


def test_the_zip_itself_as_output_is_refused(trained_zip):
    with pytest.raises(NetfabError, match="is the zip being optimised"):
        optimize_zip(trained_zip, trained_zip, to="xla")


def test_xla_pads_a_batch_to_the_next_power_of_two():
    import tensorflow as tf

    from netfab.train.core_forms import next_power_of_two

    sizes = [0, 1, 2, 3, 5, 1000, 1024, 1025, 16384, 20000]
    assert [int(next_power_of_two(tf.constant(n))) for n in sizes] == [1, 1, 2, 4, 8, 1024, 1024, 2048,
                                                                         16384, 32768]


def test_all_writes_the_form_fastest_on_one_row_and_batches_together():
    from netfab.train.optimize import Measured, fastest

    original = Measured("original", 0.8, 1, single_row_ms=1.0, batch_ms=6.0)
    xla = Measured("xla", 0.8, 1, single_row_ms=0.5, batch_ms=6.3)  # half the latency of a lone row
    int8 = Measured("int8", 0.8, 1, single_row_ms=1.05, batch_ms=6.2)  # a hair faster on batches
    assert fastest([int8, xla], original) is xla


def test_the_table_shows_a_refused_form_with_its_reason_and_marks_the_written_one():
    from netfab.train.optimize import Measured, Optimization, format_table

    original = Measured("original", 0.8, 400_000, 900_000, single_row_ms=0.5, batch_ms=3.0)
    forms = [Measured("xla", 0.8, 400_000, 910_000, single_row_ms=0.4, batch_ms=2.4),
             Measured("int8", 0.79, 300_000, refused="loses 0.0100 test AUC (0.7900, the original 0.8000), "
                                                      "more than --max-auc-drop=0.002")]
    lines = format_table(Optimization("a.zip", "b.zip", "xla", "rows.json", 200, 0.002, original, forms)).splitlines()
    assert lines[2].split()[0] == "xla" and "0.400 ms (0.80x)" in lines[2] and lines[2].endswith("<- written")
    assert lines[3].split()[:5] == ["int8", "300.0", "kB", "0.7900", "-0.0100"]
    assert "refused: loses 0.0100 test AUC" in lines[3]
    assert lines[-1] == "written: b.zip (xla)"
