"""The fab tasks as a user runs them: listing, `fab train`, and the full Jenkins `fab ci`."""
import json
import re
import socket
import subprocess

import pytest

from netfab import model_zip
from tests.helpers import PROJECT, fab_command, run_fab, user_env


def test_fab_lists_every_task_with_help():
    result = run_fab("-l")
    assert result.returncode == 0, result.stderr
    for name in ("train", "ci", "config", "variants", "fixture", "inspect"):
        assert re.search(rf"^\s+{name}\s+\S", result.stdout, re.M), name


def test_fab_train_prints_the_zip_and_its_metrics_and_writes_the_result_file(tmp_path):
    result = run_fab("train", f"--output={tmp_path}", f"--result={tmp_path / 'result.json'}",
                     env={"NET_EPOCHS": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    zip_uri = re.search(r"^model zip: (\S+)$", result.stdout, re.M).group(1)
    assert zip_uri.startswith(str(tmp_path / "deep_v1"))
    assert re.search(r"^test AUC 0\.\d{4}  test loss", result.stdout, re.M)
    with model_zip.ModelZip(zip_uri) as package:  # verified on opening
        trained = package.json("config.json")
    written = json.loads((tmp_path / "result.json").read_text())
    assert written == {"zip_uri": zip_uri, "run_id": trained["run_id"], "metrics": trained["result"],
                       "resumed_at_epoch": 0}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_fab_train_refuses_a_result_file_it_could_not_write_before_training(tmp_path):
    result = run_fab("train", f"--output={tmp_path}", f"--result={tmp_path / 'no' / 'result.json'}")
    assert result.returncode == 1
    assert "--result=" in result.stderr and "its folder does not exist" in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())  # nothing trained


def test_fab_train_with_a_bad_dataset_fails_with_one_line(tmp_path):
    (tmp_path / "bad.json").write_text('{"country": "FR"\n')
    result = run_fab("train", f"--dataset={tmp_path / 'bad.json'}", f"--output={tmp_path}")
    assert result.returncode == 1
    assert f"error: {tmp_path / 'bad.json'}:1: malformed JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("deep_v1"))  # nothing written


@pytest.mark.slow  # trains every variant
def test_fab_ci_trains_and_verifies_every_variant(tmp_path):
    result = run_fab("ci", f"--output={tmp_path}", "--min-auc=0.70", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ci passed: 6 variant(s)" in result.stdout
    rows = {variant: (task, metric, float(model), float(trivial)) for variant, task, metric, model, trivial in
            re.findall(r"^(\w+_v\d)\s+(\w+)\s+(\w+)\s+(-?[\d.]+)\s+(-?[\d.]+)", result.stdout, re.M)}
    assert {v: r[0] for v, r in rows.items()} == {"deep_v1": "binary", "rnn_v1": "binary", "dcn_v2": "binary", "trip_type_v1": "multiclass",
                                                  "tags_v1": "multilabel", "review_score_v1": "regression"}
    assert all(rows[v][2] >= 0.70 for v in ("deep_v1", "rnn_v1", "dcn_v2")), rows
    assert rows["review_score_v1"][2] < rows["review_score_v1"][3], rows  # RMSE below the mean's
    assert len(list(tmp_path.glob("*/*/model.zip"))) == 6


@pytest.mark.slow  # trains every variant
def test_fab_ci_fails_when_a_variant_misses_the_floor(tmp_path):
    result = run_fab("ci", f"--output={tmp_path}", "--min-auc=0.99", env={"NET_EPOCHS": "1"},
                     timeout=900)
    assert result.returncode == 1
    assert re.search(r"ci failed for [3-6] of 6 variant\(s\)", result.stderr)
    assert "below the sanity floor 0.99" in result.stderr


@pytest.mark.parametrize("args, env, message", [
    (["train"], {"NET_LEARNIN_RATE": "0.1"}, "unknown environment variable NET_LEARNIN_RATE"),
    (["train", "--variant=dep_v1"], {}, "unknown variant 'dep_v1'"),
    (["train", "--dataset=/no/such/rows.json"], {}, "dataset /no/such/rows.json does not exist"),
])
def test_train_mistakes_are_found_before_tensorflow_loads(tmp_path, args, env, message):
    # A tensorflow that cannot be imported: the mistake must be reported without reaching it.
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("raise ImportError('tensorflow was imported')\n")
    result = run_fab(*args, env={**env, "PYTHONPATH": f"{tmp_path}:{PROJECT}"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message}"), result.stderr[-1000:]


def test_serve_on_a_port_in_use_or_a_foreign_host_is_one_error_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The port is bound before the model loads, so no zip is needed to see the answer.
        used = run_fab("serve", f"--model={tmp_path / 'none.zip'}", f"--port={port}")
    foreign = run_fab("serve", f"--model={tmp_path / 'none.zip'}", "--host=999.1.1.1", "--port=0")
    too_big = run_fab("serve", f"--model={tmp_path / 'none.zip'}", "--port=99999")
    for result, message in ((used, f"cannot listen on 127.0.0.1:{port}"),
                            (foreign, "cannot listen on 999.1.1.1:0"),
                            (too_big, "port must be in 0..65535")):
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message}"), result.stderr[-1000:]
        assert "Traceback" not in result.stderr


def test_a_reader_that_stops_early_ends_fab_quietly(tmp_path):
    result = subprocess.run(["bash", "-c", f"{fab_command('config')[0]} config | head -1"], cwd=PROJECT,
                            env=user_env(), capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("variant: deep_v1") and result.stderr == ""


def test_fab_fixture_never_overwrites_the_bundled_fixture_by_default(tmp_path):
    from data.fixture import FIXTURE_PATH

    before = FIXTURE_PATH.stat().st_mtime_ns
    refused = run_fab("fixture", "--rows=20")
    assert refused.returncode == 1 and "needs --out=PATH" in refused.stderr and "--force" in refused.stderr
    assert FIXTURE_PATH.stat().st_mtime_ns == before
    written = run_fab("fixture", "--rows=20", f"--out={tmp_path / 'rows.json'}")
    assert written.returncode == 0 and len((tmp_path / "rows.json").read_text().splitlines()) == 20


@pytest.mark.parametrize("args, message", [
    (["serve", "--model=m.zip", "--max-body-mb=abc"], "error: --max-body-mb: 'abc' is not a number (e.g. --max-body-mb=32.0)"),
    (["serve", "--model=m.zip", "--port=abc"], "error: --port: 'abc' is not a whole number (e.g. --port=8501)"),
    (["ci", "--min-auc=x"], "error: --min-auc: 'x' is not a number (e.g. --min-auc=0.65)"),
    (["tune", "--gpus-per-host=two"], "error: --gpus-per-host: 'two' is not a whole number"),  # default None
])
def test_an_option_value_of_the_wrong_type_is_one_error_line(args, message):
    result = run_fab(*args)  # refused while parsing, before the task runs
    assert result.returncode == 1
    assert result.stderr == message + "\n"


def option_lines(help_text: str) -> list[str]:
    """The lines of `fab --help TASK` that start an option (continuations are indented further)."""
    options = help_text.split("\nOptions:\n", 1)[1]
    return [line for line in options.splitlines() if re.match(r"^  \S", line)]


def test_help_shows_every_option_of_every_task_with_its_type():
    import inspect

    import fabfile

    tasks = re.findall(r"^  (\S+)", run_fab("-l").stdout, re.M)
    assert "serve" in tasks and "build-image" in tasks
    for name in tasks:
        result = run_fab("--help", name)
        assert result.returncode == 0, result.stderr
        parameters = list(inspect.signature(getattr(fabfile, name.replace("-", "_")).body).parameters.values())[1:]
        flags = {}
        for line in option_lines(result.stdout):
            if line.strip() == "none":
                continue
            # one long flag, a type unless it is an on/off flag, and its help text
            match = re.match(r"^  --([a-z][a-z0-9-]*)(=(STRING|INT|FLOAT))?\s{2,}\S", line)
            assert match, f"fab --help {name}: {line!r}"
            flags[match[1]] = match[3]
        assert set(flags) == {p.name.replace("_", "-") for p in parameters}, name
        for parameter in parameters:
            on_off = isinstance(parameter.default, bool)
            assert (flags[parameter.name.replace("_", "-")] is None) == on_off, f"{name} --{parameter.name}"
    serve_help = run_fab("--help", "serve").stdout
    for flag in ("--max-queue-rows=INT", "--max-body-mb=FLOAT", "--timeout=FLOAT", "--admin-token=STRING"):
        assert re.search(rf"^  {flag}\s", serve_help, re.M), flag
