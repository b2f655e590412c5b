"""The data path end to end, as a user runs it: `fab dataset` then `fab train`, locally and on gs://.

The gs:// run talks to the real GCS emulator through tests/servers.FaultProxy, which holds
the model zip's upload so that the first `fab train` can be killed in the middle of publishing.
"""
import re
import signal
import subprocess

import pytest

from data.warehouse import write_warehouse
from netfab import storage
from netfab import model_zip
from netfab.config import load_config
from netfab.dataset.make import make_dataset
from tests.helpers import PROJECT, fab_command, run_fab, user_env

# Each test runs the whole flow (warehouse or bucket, dataset, trainings): out of the everyday tier.
pytestmark = pytest.mark.slow
FAST = {"NET_EPOCHS": "2"}


def test_fab_dataset_then_fab_train_on_a_fresh_machine(tmp_path):
    """The offline flow: the sample warehouse -> duckdb -> shards -> a model zip that records the query."""
    warehouse, dataset, output = tmp_path / "warehouse", tmp_path / "datasets" / "q3", tmp_path / "artifacts"
    env = {**FAST, "NET_WAREHOUSE": str(warehouse)}
    made = run_fab("warehouse", "--rows=3000", f"--out={warehouse}")
    assert made.returncode == 0, made.stderr[-2000:]
    assert "travel.impressions 3,000" in made.stdout

    result = run_fab("dataset", "--engine=duckdb", f"--out={dataset}", "--start=2026-02-01",
                     "--end=2026-11-30", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(rf"^dataset: {re.escape(str(dataset))}  \([\d,]+ rows in 1 shard\(s\), duckdb", result.stdout, re.M)
    assert f"fab train --variant=deep_v1 --dataset={dataset}" in result.stdout
    assert sorted(p.name for p in dataset.iterdir()) == ["_dataset.json", "part-000000000000.json"]

    again = run_fab("dataset", "--engine=duckdb", f"--out={dataset}", env=env)
    assert again.returncode == 1 and "already holds a dataset" in again.stderr and "--overwrite" in again.stderr

    trained = run_fab("train", f"--dataset={dataset}", f"--output={output}", env=env)
    assert trained.returncode == 0, trained.stderr[-2000:]
    zip_uri = re.search(r"^model zip: (\S+)$", trained.stdout, re.M).group(1)
    metadata = model_zip.ModelZip(zip_uri).json("dataset_metadata.json")  # verified on opening
    provenance = metadata["provenance"]
    assert provenance["query"] == "training_rows" and provenance["engine"] == "duckdb"
    assert provenance["parameters"] == {"start_date": "2026-02-01", "end_date": "2026-11-30"}
    assert provenance["job_ids"] == [] and provenance["rows"] == metadata["rows"]["total"]
    assert "@start_date" in provenance["sql"]
    assert [f["name"] for f in metadata["files"]] == ["part-000000000000.json"]  # not the sidecar


def test_fab_train_from_gs_to_gs_publishes_whole_or_not_at_all(gcs, gcs_proxy, tmp_path):
    write_warehouse(tmp_path / "warehouse", rows=2000)
    dataset, output = gcs.uri("datasets/q1"), gcs.uri("models")
    config = load_config("deep_v1", environ={"NET_WAREHOUSE": str(tmp_path / "warehouse")})
    made = make_dataset(config, dataset, engine="duckdb", params={"end_date": "2026-09-30"})
    assert gcs.names("datasets/") == ["datasets/q1/_dataset.json", "datasets/q1/part-000000000000.json"]

    # metrics.csv and metrics.png go up first; the third upload (model.zip) stalls, and the run is killed.
    gcs_proxy.add_rule("POST", r"uploadType=multipart", action="stall", after=2)
    command = fab_command("train", f"--dataset={dataset}", f"--output={output}")
    first = subprocess.Popen(command, cwd=PROJECT, env=user_env(FAST), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        assert gcs_proxy.stalled.wait(300), first.communicate(timeout=60)[0][-3000:]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    published = gcs.names("models/")
    assert [name.rsplit("/", 1)[1] for name in published] == ["metrics.csv", "metrics.png"]  # no model.zip

    second = subprocess.run(command, cwd=PROJECT, env=user_env(FAST), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stderr  # the finished training was kept; only publishing was redone
    zip_uri = re.search(r"^model zip: (\S+)$", second.stdout, re.M).group(1)
    run_folder = published[0].rsplit("/", 1)[0]
    assert zip_uri == gcs.uri(f"{run_folder}/model.zip")
    assert gcs.names("models/") == sorted(published + [f"{run_folder}/model.zip"])

    # downloaded through the cache, manifest checked on opening
    metadata = model_zip.ModelZip(zip_uri).json("dataset_metadata.json")
    assert metadata["source"] == dataset and metadata["rows"]["total"] == made.rows
    assert metadata["provenance"]["engine"] == "duckdb"
    assert metadata["provenance"]["parameters"]["end_date"] == "2026-09-30"
    work = storage.work_folder(output) / "deep_v1"
    assert not work.exists() or not any(work.iterdir())  # the local work folder was cleaned up
