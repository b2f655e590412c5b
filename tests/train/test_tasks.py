"""Every task (netfab/tasks.py) end to end on the generated fixture: trained by config alone, better
than a trivial model by a clear margin, exported so that raw rows get the core's outputs, and served
in the documented shape over real HTTP (TF Serving REST, OIP v2) and gRPC (Triton's client).

Usage: python -m pytest tests/train/test_tasks.py
"""
import json
import tempfile

import numpy as np
import pytest

from data.fixture import FIXTURE_PATH, TAGS, TRIP_TYPES
from netfab import model_zip
from tests.helpers import config_for, fixture_rows
from tests.serve.helpers import ServerProcess, call

# variant -> (the figure, how much better than the trivial model it must be: higher, or lower for errors)
CLEAR_MARGIN = {"trip_type_v1": ("accuracy", 0.08), "tags_v1": ("micro_auc", 0.15),
                "review_score_v1": ("rmse", -0.3)}
TASK_OF = {"trip_type_v1": "multiclass", "tags_v1": "multilabel", "review_score_v1": "regression"}


@pytest.fixture(scope="module", params=list(CLEAR_MARGIN))
def trained(request, tmp_path_factory):
    from netfab.train.loop import train

    variant = request.param
    result = train(config_for(variant), str(FIXTURE_PATH), str(tmp_path_factory.mktemp(variant)))
    return variant, result


def test_each_task_beats_a_trivial_model_by_a_clear_margin(trained):
    variant, result = trained
    metric, margin = CLEAR_MARGIN[variant]
    model, trivial = result.metrics[f"test_{metric}"], result.metrics[f"baseline_test_{metric}"]
    assert (model - trivial >= margin) if margin > 0 else (model - trivial <= margin), (model, trivial)


def test_the_zip_records_the_task_its_classes_and_its_metrics(trained):
    variant, result = trained
    with model_zip.ModelZip(result.zip_uri) as package:
        config = package.json("config.json")
        metadata = package.json("dataset_metadata.json")
        header = package.text("metrics.csv").splitlines()[0].split(",")
        assert "metrics.png" in package.manifest["files"]
    assert config["values"]["task"] == metadata["task"] == TASK_OF[variant]
    expected = {"trip_type_v1": TRIP_TYPES, "tags_v1": TAGS, "review_score_v1": None}[variant]
    assert metadata.get("classes") == expected  # inferred from the training split, in this order
    assert metadata["split"]["method"] == ("by_column" if variant == "review_score_v1" else "random")
    tested = {"multiclass": ["accuracy", "top_k_accuracy", "macro_f1", "loss"],
              "multilabel": ["micro_auc", "macro_auc", "micro_f1", "macro_f1", "loss"],
              "regression": ["rmse", "mae", "r2", "loss"]}[TASK_OF[variant]]
    assert {f"test_{m}" for m in tested} <= set(header)
    assert {f"test_{m}" for m in tested} <= set(config["result"])
    assert {f"validation_{m}" for m in tested} <= set(config["result"])


def test_raw_rows_get_the_cores_outputs(trained):
    """The SavedModel on raw JSON rows (unseen values and nulls too) against the numeric core on
    the front end's arrays of the same rows."""
    import models
    from data.loading import load_rows
    from data.preparation import DatasetShapes, encode
    from netfab.config import config_from_values
    from netfab.serve.saved_model import load_serving_function, predict_rows, training_means

    variant, result = trained
    rows = fixture_rows(40)
    rows[0].update(country="ZZ", item_id="item_never_seen", rating=None, device=None)
    rows[1].update(facilities=["sauna", "pool"], host_note=None)  # an item never seen, a null text
    rows[2].update(facilities=[])
    rows[3].update(facilities=None)
    with tempfile.TemporaryDirectory() as tmp, model_zip.ModelZip(result.zip_uri) as package:
        folder = package.extract(tmp)
        function = load_serving_function(folder / "saved_model")
        served = predict_rows(function, rows, training_means(function, package.json("dataset_metadata.json")))
        config = config_from_values(package.json("config.json")["values"])
        shapes = DatasetShapes.from_dict(package.json("front_end.json"))
        path = folder / "rows.json"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        core = models.load(folder / "core.keras")
        expected = core.predict(encode(load_rows([path], config), config, shapes), verbose=0)
    assert served.shape == expected.shape == ((40, len(shapes.classes)) if shapes.classes else (40,))
    np.testing.assert_allclose(served, expected, atol=1e-5)
    if TASK_OF[variant] == "multiclass":
        np.testing.assert_allclose(served.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow  # a server per task: ~15 s each to import TensorFlow and warm up
def test_rest_answers_in_the_documented_shape(trained, tmp_path):
    variant, result = trained
    task = TASK_OF[variant]
    rows = fixture_rows(5)
    import tritonclient.grpc as triton

    from tests.serve.helpers import free_port

    grpc_port = free_port()
    with ServerProcess(result.zip_uri, "--cache-rows=100", f"--grpc-port={grpc_port}",
                       log_path=tmp_path / "serve.log") as server:
        path = f"/v1/models/{variant}:predict"
        reply = call(server.port, "POST", path, {"instances": rows})
        columnar = call(server.port, "POST", path, {"inputs": {k: [r[k] for r in rows] for k in rows[0]}})
        cached = call(server.port, "POST", path, {"instances": rows})
        metadata = call(server.port, "GET", f"/v1/models/{variant}/metadata")
        oip_metadata = call(server.port, "GET", f"/v2/models/{variant}")
        fill = {"BYTES": "", "FP32": 4.0}  # OIP has no null: "" and a number stand in
        # a list column goes as its items joined, the signature's string (docs/serving.md)
        sent = {tensor["name"]: [fill[tensor["datatype"]] if r[tensor["name"]] is None else
                                 "\x1f".join(r[tensor["name"]]) if isinstance(r[tensor["name"]], list) else
                                 r[tensor["name"]] for r in rows] for tensor in oip_metadata.body["inputs"]}
        kinds = {tensor["name"]: tensor["datatype"] for tensor in oip_metadata.body["inputs"]}
        oip = call(server.port, "POST", f"/v2/models/{variant}/infer", {"inputs": [
            {"name": name, "datatype": kinds[name], "shape": [5], "data": values} for name, values in sent.items()]})
        inputs = []
        for name, values in sent.items():
            given = triton.InferInput(name, [5], kinds[name])
            given.set_data_from_numpy(np.array(values, dtype=object if kinds[name] == "BYTES" else np.float32))
            inputs.append(given)
        over_grpc = triton.InferenceServerClient(f"127.0.0.1:{grpc_port}").infer(variant, inputs)
    assert reply.status == 200, reply.body
    predictions = np.array(reply.body["predictions"])
    output = metadata.body["metadata"]["signature_def"]["signature_def"]["serving_default"]["outputs"]
    if task == "regression":
        assert predictions.shape == (5,) and "classes" not in reply.body
        assert list(output) == ["value"]
        assert 1 <= predictions.min() and predictions.max() <= 10
    else:
        classes = TRIP_TYPES if task == "multiclass" else TAGS
        assert predictions.shape == (5, len(classes)) and reply.body["classes"] == classes
        assert metadata.body["metadata"]["classes"] == classes
        dims = output["probability"]["tensor_shape"]["dim"]
        assert [d["size"] for d in dims] == ["-1", str(len(classes))]
        assert ((0 <= predictions) & (predictions <= 1)).all()
    np.testing.assert_allclose(columnar.body["outputs"], predictions, atol=1e-6)
    # OIP v2 (KServe, Triton) gives the same output, flat in row-major order with its shape
    assert oip.status == 200, oip.body
    (tensor,) = oip.body["outputs"]
    assert tensor["name"] == list(output)[0] and tensor["shape"] == list(predictions.shape)
    assert oip_metadata.body["outputs"][0]["shape"] == [-1, *predictions.shape[1:]]
    # and gRPC's ModelInfer (Triton's client) the same tensor, shaped
    served = over_grpc.as_numpy(list(output)[0])
    assert served.shape == predictions.shape
    np.testing.assert_allclose(served, np.array(tensor["data"]).reshape(predictions.shape), atol=1e-6)
    np.testing.assert_allclose(cached.body["predictions"], predictions, atol=1e-6)  # the cache keeps rows whole


def test_predict_file_writes_the_tasks_columns_next_to_row_numbers(trained, tmp_path):
    """fab predict's output per task; with no id column (id_column=""), the row number."""
    import pandas as pd

    from netfab.serve.batch_prediction import predict_file
    from tests.helpers import write_ndjson

    variant, result = trained
    write_ndjson(tmp_path / "rows.json", fixture_rows(30))
    predict_file(result.zip_uri, str(tmp_path / "rows.json"), str(tmp_path / "out.csv"), progress=False,
                 id_column="")
    written = pd.read_csv(tmp_path / "out.csv")
    assert written["row"].tolist() == list(range(30))
    task = TASK_OF[variant]
    if task == "regression":
        assert list(written.columns) == ["row", "value"]
    elif task == "multiclass":
        assert list(written.columns) == ["row", *(f"probability_{c}" for c in TRIP_TYPES), "class"]
        likeliest = written[[f"probability_{c}" for c in TRIP_TYPES]].to_numpy().argmax(axis=1)
        assert written["class"].tolist() == [TRIP_TYPES[i] for i in likeliest]
    else:
        assert list(written.columns) == ["row", *(f"probability_{t}" for t in TAGS)]


def test_weight_column_scales_the_training_loss(tmp_path):
    """Booked rows weighted 10x: the model's mean probability on the test split rises well above the
    unweighted model's (which matches the booking rate); a negative weight is a one-line error."""
    from data.preparation import split_indices
    from netfab.errors import DataError
    from netfab.serve.saved_model import load_serving_function, predict_rows
    from netfab.train.loop import train
    from tests.helpers import write_ndjson

    rows = [dict(row, weight=10 if row["booked"] else 1) for row in fixture_rows()]
    path = write_ndjson(tmp_path / "weighted.json", rows)
    means = {}
    for weight_column in ("", "weight"):
        config = config_for("deep_v1", weight_column=weight_column, epochs=5, batch_size=64, learning_rate=0.02)
        result = train(config, str(path), str(tmp_path / f"out{weight_column}"))
        with model_zip.ModelZip(result.zip_uri) as package:
            function = load_serving_function(package.extract(tmp_path / f"z{weight_column}") / "saved_model")
        test = [rows[i] for i in split_indices(len(rows), config.config)["test"]]
        means[weight_column] = float(predict_rows(function, test).mean())
    assert means["weight"] > means[""] + 0.2, means
    rows[7]["weight"] = -1
    with pytest.raises(DataError, match=r"weight column 'weight' holds -1 in row 8 .*numbers >= 0"):
        train(config_for("deep_v1", weight_column="weight"), str(write_ndjson(tmp_path / "bad.json", rows)),
              str(tmp_path / "bad"))


def test_binary_only_tools_refuse_another_task_in_one_line(trained):
    """fab optimize and fab evaluate compare test AUC; fab tune ranks by validation AUC."""
    from netfab.errors import NetfabError
    from netfab.train.evaluate import evaluate_zips
    from netfab.train.optimize import optimize_zip
    from netfab.tune.search_space import load_space

    variant, result = trained
    task = TASK_OF[variant]
    with pytest.raises(NetfabError, match=f"is a {task} model; fab optimize .* task = binary"):
        optimize_zip(result.zip_uri, result.zip_uri + ".optimized")
    with pytest.raises(NetfabError, match=f"is a {task} model; fab evaluate compares task = binary"):
        evaluate_zips(result.zip_uri)
    with pytest.raises(NetfabError, match=f"has task = {task}; fab tune .* task = binary"):
        load_space(variant)
