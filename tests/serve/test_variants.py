"""Live variants over real HTTP on loopback: several models (versions, labels), an experiment's
split, sticky keys and shadow, per-arm metrics, load/unload/relabel under steady load, the
experiment file re-read, and the request log retrained with `fab train`.

One `fab serve` for the module, started as a user would: a model repository holding two deep_v1
versions and an rnn_v1, labels stable/canary on the deep_v1 versions, an experiment splitting
`bookings` 70/30 between them with rnn_v1 as a shadow, keyed by the X-User-Id header.
"""
import asyncio
import hashlib
import json
import math
import re
import shutil
import threading
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from data.fixture import FIXTURE_PATH
from netfab.errors import NetfabError
from tests.helpers import config_for, fixture_rows, run_fab, write_ndjson
from tests.serve.helpers import ServerProcess, call

TOKEN = "variants-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
STABLE, CANARY, SHADOW = "deep_v1/labels/stable", "deep_v1/labels/canary", "rnn_v1"
ENDPOINT = "/v1/models/bookings:predict"


def _train(tmp_path_factory, variant, **env) -> str:
    from netfab.train.loop import train

    return train(config_for(variant, **env), str(FIXTURE_PATH), str(tmp_path_factory.mktemp(variant))).zip_uri


def _version(zip_uri: str) -> str:
    return Path(zip_uri).parent.name  # the run id: <output>/<variant>/<run id>/model.zip


@pytest.fixture(scope="module")
def repository(trained_zip, tmp_path_factory) -> dict:
    """A model repository folder: deep_v1 twice (the session's zip and another seed) and rnn_v1."""
    folder = tmp_path_factory.mktemp("repository")
    zips = {"stable": trained_zip, "canary": _train(tmp_path_factory, "deep_v1", epochs=1, seed=7),
            "shadow": _train(tmp_path_factory, "rnn_v1", epochs=1)}
    placed = {}
    for role, uri in zips.items():
        target = folder / Path(uri).parent.parent.name / _version(uri) / "model.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(uri, target)
        placed[role] = str(target)
    third = _train(tmp_path_factory, "deep_v1", epochs=1, seed=11)  # loaded later, by the admin API
    return {"folder": str(folder), **placed, "third": third}


@pytest.fixture(scope="module")
def experiment_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("experiment") / "bookings.json"
    path.write_text(json.dumps({"endpoint": "bookings", "arms": {STABLE: 70, CANARY: 30}, "shadow": [SHADOW],
                                "assign_by": "header:X-User-Id", "salt": "test-salt"}))
    return path


@pytest.fixture(scope="module")
def server(repository, experiment_file, tmp_path_factory):
    logs = tmp_path_factory.mktemp("request-log")
    with ServerProcess(repository["folder"], f"--admin-token={TOKEN}", f"--experiment={experiment_file}",
                       "--experiment-poll=0.5", f"--label=deep_v1/labels/stable={_version(repository['stable'])}",
                       f"--label=deep_v1/labels/canary={_version(repository['canary'])}",
                       f"--log-requests={logs}", "--log-fraction=1", "--log-shard-seconds=1",
                       log_path=tmp_path_factory.mktemp("serve") / "serve.log") as process:
        process.request_log = logs
        yield process


@pytest.fixture(scope="module")
def direct(repository):
    """Each zip's SavedModel called in this process, no server in between."""
    from netfab.serve.model import ServingModel

    models = {role: ServingModel.load(repository[role]) for role in ("stable", "canary", "shadow")}
    return lambda role, rows: models[role].predict(models[role].inputs.columns_from_rows(rows))


async def _post_many(port: int, path: str, bodies: list, headers: list, concurrency: int = 32) -> list:
    """(status, Netfab-Arm header, body) of each request, `concurrency` at a time on kept-alive connections."""
    results = [None] * len(bodies)
    queue = list(range(len(bodies)))

    async def client(session):
        while queue:
            i = queue.pop()
            async with session.post(f"http://127.0.0.1:{port}{path}", data=bodies[i], headers=headers[i]) as reply:
                results[i] = (reply.status, reply.headers.get("Netfab-Arm"), await reply.read())

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return results


def post_many(port, path, bodies, headers, concurrency=32):
    return asyncio.run(_post_many(port, path, bodies, headers, concurrency))


def arm_counts(metrics_text: str, metric: str = "netfab_arm_requests_total") -> dict:
    pattern = re.compile(rf'^{metric}{{experiment="bookings",arm="([^"]+)",role="(\w+)"}} (\S+)$', re.M)
    return {(arm, role): float(value) for arm, role, value in pattern.findall(metrics_text)}


# --- several models: versions and labels, as TF Serving has them --------------------------------------
def test_a_repository_serves_every_zip_under_its_versions_and_labels(server, repository, direct):
    rows = fixture_rows(20)
    status = call(server.port, "GET", "/v1/models/deep_v1").body
    assert sorted(s["version"] for s in status["model_version_status"]) == sorted(
        _version(repository[role]) for role in ("stable", "canary"))
    for role in ("stable", "canary"):
        for path in (f"/v1/models/deep_v1/versions/{_version(repository[role])}:predict",
                     f"/v1/models/deep_v1/labels/{role}:predict"):
            reply = call(server.port, "POST", path, {"instances": rows})
            assert reply.status == 200, reply.body
            np.testing.assert_allclose(reply.body["predictions"], direct(role, rows), atol=1e-5)
    plain = call(server.port, "POST", "/v1/models/deep_v1:predict", {"instances": rows})  # the stable label
    np.testing.assert_allclose(plain.body["predictions"], direct("stable", rows), atol=1e-5)
    shadow = call(server.port, "POST", "/v1/models/rnn_v1:predict", {"instances": rows})
    np.testing.assert_allclose(shadow.body["predictions"], direct("shadow", rows), atol=1e-5)
    missing = call(server.port, "POST", "/v1/models/deep_v1/labels/nightly:predict", {"instances": rows})
    assert missing.status == 404 and "no label 'nightly'" in missing.body["error"] and "canary" in missing.body["error"]
    oip = call(server.port, "GET", "/v2/models/deep_v1/versions/canary")  # OIP v2: a label in the version's place
    assert oip.status == 200 and oip.body["versions"] == [_version(repository["canary"])]


def test_memory_per_model_is_in_the_metrics(server, repository):
    text = call(server.port, "GET", "/metrics").body["text"]
    memory = dict(re.findall(r'^netfab_model_memory_bytes{name="([^"]+",version="[^"]+)"} (\S+)$', text, re.M))
    assert len(memory) == 3, text
    assert all(float(value) > 0 for value in memory.values()), memory
    assert re.search(r"^netfab_requests_in_flight \d", text, re.M), "the HPA's custom metric"


# --- the experiment: split, sticky keys, shadow, per-arm metrics ----------------------------------------
def test_split_holds_within_3_sigma_over_10000_requests_and_metrics_count_each_arm(server, direct):
    before = arm_counts(call(server.port, "GET", "/metrics").body["text"])
    rows = fixture_rows(1)
    body = json.dumps({"instances": rows}).encode()
    count = 10_000
    results = post_many(server.port, ENDPOINT, [body] * count, [{"X-User-Id": f"user-{i}"} for i in range(count)])
    assert {status for status, _, _ in results} == {200}
    arms = [arm for _, arm, _ in results]
    assert set(arms) == {STABLE, CANARY}, "only live arms answer; the shadow never does"
    canary = arms.count(CANARY)
    sigma = math.sqrt(count * 0.3 * 0.7)
    assert abs(canary - 0.3 * count) <= 3 * sigma, f"{canary} of {count} on the canary, expected 3000 ± {3 * sigma:.0f}"
    # each answer is its arm's model's score, never the shadow's
    expected = {STABLE: direct("stable", rows)[0], CANARY: direct("canary", rows)[0]}
    for _, arm, raw in results[:200]:
        assert json.loads(raw)["predictions"][0] == pytest.approx(expected[arm], abs=1e-5)
    deadline = time.monotonic() + 30  # shadows are scored after the answers
    while True:
        after = arm_counts(call(server.port, "GET", "/metrics").body["text"])
        grown = {key: after.get(key, 0) - before.get(key, 0) for key in after}
        if grown.get((SHADOW, "shadow"), 0) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert grown[(STABLE, "live")] == count - canary and grown[(CANARY, "live")] == canary
    assert grown[(SHADOW, "shadow")] == count, "every request is scored by the shadow too"


def test_the_same_key_always_lands_on_the_same_arm(server):
    body = json.dumps({"instances": fixture_rows(1)}).encode()
    keys = [f"sticky-{i}" for i in range(300)]
    first = post_many(server.port, ENDPOINT, [body] * len(keys), [{"X-User-Id": k} for k in keys])
    again = post_many(server.port, ENDPOINT, [body] * len(keys), [{"X-User-Id": k} for k in reversed(keys)])
    assert [arm for _, arm, _ in first] == [arm for _, arm, _ in reversed(again)]
    assert {arm for _, arm, _ in first} == {STABLE, CANARY}


def test_a_request_without_the_key_header_is_told_which_to_send(server):
    reply = call(server.port, "POST", ENDPOINT, {"instances": fixture_rows(1)})
    assert reply.status == 400 and "'X-User-Id' header" in reply.body["error"]


def test_oip_answers_say_the_arm_in_their_parameters(server):
    import tritonclient.http as triton

    rows = fixture_rows(3)
    metadata = call(server.port, "GET", "/v2/models/bookings").body
    inputs = []
    for spec in metadata["inputs"]:
        values = [row[spec["name"]] for row in rows]
        tensor = triton.InferInput(spec["name"], [3], spec["datatype"])
        tensor.set_data_from_numpy(np.array(values, dtype=object if spec["datatype"] == "BYTES" else np.float32))
        inputs.append(tensor)
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    result = client.infer("bookings", inputs, headers={"X-User-Id": "oip-user"})
    arms = result.get_response()["parameters"]["arms"]
    assert len(arms) == 1 and arms[0] in (STABLE, CANARY)
    assert result.as_numpy("probability").shape == (3,)


def test_shadow_scores_are_measured_and_logged_never_returned(server, direct):
    rows = fixture_rows(40)[20:]
    reply = call(server.port, "POST", ENDPOINT, {"instances": rows}, headers={"X-User-Id": "shadow-check"})
    assert reply.status == 200 and reply.headers["Netfab-Arm"] in (STABLE, CANARY)
    assert not np.allclose(reply.body["predictions"], direct("shadow", rows), atol=1e-3)
    ids = {row["impression_id"] for row in rows}
    logged = _wait_for_logged(server.request_log, lambda r: r.get("impression_id") in ids and r["role"] == "shadow",
                              len(rows))
    np.testing.assert_allclose([r["score"] for r in sorted(logged, key=lambda r: r["row"])],
                               direct("shadow", rows), atol=1e-5)
    assert {r["arm"] for r in logged} == {SHADOW} and {r["model"] for r in logged} == {"rnn_v1"}
    text = call(server.port, "GET", "/metrics").body["text"]
    assert arm_counts(text, "netfab_arm_score_count")[(SHADOW, "shadow")] >= len(rows)
    assert f'netfab_arm_score_bucket{{experiment="bookings",arm="{SHADOW}",role="shadow",le="+Inf"}}' in text
    assert 'netfab_arm_seconds{experiment="bookings",arm="deep_v1/labels/stable",role="live",quantile="0.99"}' in text


def _logged_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for shard in sorted(Path(folder).glob("requests-*.json"))
            for line in shard.read_text().splitlines()]


def _wait_for_logged(folder, keep, count, timeout=30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [row for row in _logged_rows(folder) if keep(row)]
        if len(rows) >= count:
            return rows
        time.sleep(0.5)
    raise AssertionError(f"{len(rows)} of {count} rows logged after {timeout} s")


def test_changing_the_experiment_file_reweights_without_a_restart(server, experiment_file):
    body = json.dumps({"instances": fixture_rows(1)}).encode()
    pid = server.process.pid
    original = experiment_file.read_text()
    try:
        experiment_file.write_text(json.dumps({**json.loads(original), "arms": {CANARY: 1}}))
        deadline = time.monotonic() + 20
        while call(server.port, "POST", ENDPOINT, body, headers={"X-User-Id": "probe"}).headers["Netfab-Arm"] != CANARY:
            assert time.monotonic() < deadline, "the changed file was never applied"
            time.sleep(0.2)
        answers = post_many(server.port, ENDPOINT, [body] * 200, [{"X-User-Id": f"w-{i}"} for i in range(200)])
        assert {arm for _, arm, _ in answers} == {CANARY}
        experiment_file.write_text("{not json")  # a broken file: the last good experiment stays
        time.sleep(1.5)
        assert call(server.port, "POST", ENDPOINT, body, headers={"X-User-Id": "probe"}).status == 200
        assert "not applied, still serving the previous one" in server.log_tail()
    finally:
        experiment_file.write_text(original)
    deadline = time.monotonic() + 20
    while len({call(server.port, "POST", ENDPOINT, body, headers={"X-User-Id": f"back-{i}"}).headers["Netfab-Arm"]
               for i in range(30)}) < 2:
        assert time.monotonic() < deadline, "the original split never came back"
    assert server.process.pid == pid and server.process.poll() is None


# --- admin: load, relabel, unload under steady load ------------------------------------------------------
def test_load_relabel_and_unload_under_steady_load_fail_no_request(server, repository):
    rows = fixture_rows(5)
    stop, statuses, lock = threading.Event(), [], threading.Lock()

    def client(path, key):
        while not stop.is_set():
            reply = call(server.port, "POST", path, {"instances": rows}, headers={"X-User-Id": key})
            with lock:
                statuses.append((path, reply.status, reply.body.get("error")))

    threads = [threading.Thread(target=client, args=(path, f"load-{i}")) for i, path in enumerate(
        [ENDPOINT, ENDPOINT, "/v1/models/deep_v1:predict", "/v1/models/deep_v1/labels/canary:predict"])]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        third, old_canary = _version(repository["third"]), _version(repository["canary"])
        loaded = call(server.port, "POST", "/admin/models", {"model": repository["third"]}, headers=ADMIN, timeout=180)
        assert loaded.status == 200, loaded.body
        refused = call(server.port, "DELETE", f"/admin/models/deep_v1/versions/{old_canary}", headers=ADMIN)
        assert refused.status == 400 and "labels/canary" in refused.body["error"], refused.body  # still labelled
        relabel = call(server.port, "PUT", "/admin/models/deep_v1/labels/canary", {"version": third}, headers=ADMIN)
        assert relabel.status == 200, relabel.body
        unload = call(server.port, "DELETE", f"/admin/models/deep_v1/versions/{old_canary}", headers=ADMIN)
        assert unload.status == 200, unload.body
        reweight = call(server.port, "PUT", "/admin/experiment",
                        {"endpoint": "bookings", "arms": {STABLE: 50, CANARY: 50}, "shadow": [SHADOW],
                         "assign_by": "header:X-User-Id", "salt": "test-salt"}, headers=ADMIN)
        assert reweight.status == 200, reweight.body
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failed = [s for s in statuses if s[1] != 200]
    assert len(statuses) > 40 and not failed, f"{len(failed)} of {len(statuses)} failed: {failed[:3]}"
    listed = call(server.port, "GET", "/admin/models", headers=ADMIN).body
    versions = {(m["name"], m["version"]): m["labels"] for m in listed["models"]}
    assert versions[("deep_v1", third)] == ["canary"] and ("deep_v1", old_canary) not in versions
    assert listed["experiment"]["arms"] == {STABLE: 50, CANARY: 50}
    answer = call(server.port, "POST", "/v1/models/deep_v1/labels/canary:predict", {"instances": rows})
    assert answer.status == 200
    gone = call(server.port, "POST", f"/v1/models/deep_v1/versions/{old_canary}:predict", {"instances": rows})
    assert gone.status == 404 and third in gone.body["error"]


# --- the request log: a dataset once labels are joined --------------------------------------------------
@pytest.mark.slow
def test_logged_requests_join_labels_and_retrain_with_fab_train(server, tmp_path):
    rows = fixture_rows(1200)
    for start in range(0, len(rows), 100):
        reply = call(server.port, "POST", ENDPOINT, {"instances": rows[start:start + 100]},
                     headers={"X-User-Id": f"retrain-{start}"})
        assert reply.status == 200
    labels = {row["impression_id"]: row["booked"] for row in rows}
    deadline = time.monotonic() + 30
    while True:  # earlier tests sent some of these rows too: wait for every impression, once
        by_id = {r["impression_id"]: r for r in _logged_rows(server.request_log) if r["endpoint"] == "bookings"
                 and r["role"] == "live" and r.get("impression_id") in labels}
        if len(by_id) == len(rows) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(by_id) == len(rows), f"{len(by_id)} of {len(rows)} rows logged"
    one = next(iter(by_id.values()))
    assert one["arm"] in (STABLE, CANARY) and one["model"] == "deep_v1"
    assert {"score", "model_version", "request_id", "logged_at", "country", "price", "title"} <= set(one)
    joined = write_ndjson(tmp_path / "joined.json", [{**r, "booked": labels[i]} for i, r in by_id.items()])
    trained = run_fab("train", "--variant=deep_v1", f"--dataset={joined}", f"--output={tmp_path / 'out'}",
                      env={"NET_EPOCHS": "2"})
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "test AUC" in trained.stdout
    # and the shards are rows `fab predict` (and a warm-up) reads as they are
    shard = sorted(Path(server.request_log).glob("requests-*.json"))[0]
    scored = run_fab("predict", f"--model={trained.stdout.split('model zip: ')[1].split()[0]}", f"--input={shard}",
                     f"--output={tmp_path / 'scores.csv'}")
    assert scored.returncode == 0, scored.stderr[-2000:]


# --- the experiment file's mistakes, each one line naming the key ---------------------------------------
@pytest.mark.parametrize("values, words", [
    ({"endpoint": "b", "arms": {"deep_v1": 1}, "shadows": []}, ["unknown key 'shadows'", "did you mean 'shadow'"]),
    ({"endpoint": "b", "arms": {}}, ['"arms" must be an object']),
    ({"endpoint": "b", "arms": {"deep_v1": 0}}, ["weight must be a number above 0"]),
    ({"endpoint": "b", "arms": {"deep_v1/tags/x": 1}}, ["NAME/labels/LABEL"]),
    ({"endpoint": "b", "arms": {"deep_v1": 1}, "assign_by": "cookie"}, ['"assign_by" must be header:NAME']),
    ({"endpoint": "b", "arms": {"deep_v1": 1}, "shadow": ["deep_v1"]}, ["both an arm and a shadow"]),
], ids=["typo", "no-arms", "zero-weight", "bad-reference", "bad-key", "arm-and-shadow"])
def test_experiment_file_mistakes_name_the_key(values, words):
    from netfab.serve.experiment import Experiment

    with pytest.raises(NetfabError) as error:
        Experiment.from_dict(values, "x.json")
    assert str(error.value).startswith("experiment x.json: ") and all(w in str(error.value) for w in words)


def test_assignment_is_stable_across_processes_and_moves_few_keys_when_reweighted():
    from netfab.serve.experiment import Experiment

    ninety = Experiment.from_dict({"endpoint": "b", "arms": {"a": 90, "b": 10}, "salt": "s"}, "x")
    eighty = Experiment.from_dict({"endpoint": "b", "arms": {"a": 80, "b": 20}, "salt": "s"}, "x")
    other_salt = Experiment.from_dict({"endpoint": "b", "arms": {"a": 90, "b": 10}, "salt": "t"}, "x")
    keys = [f"u{i}" for i in range(20_000)]
    at_90 = np.array([ninety._arm_at(ninety.fraction(k)) for k in keys])
    at_80 = np.array([eighty._arm_at(eighty.fraction(k)) for k in keys])
    # PlanOut's hash: no process-wide seed (Python's hash() would differ per process)
    assert ninety.fraction("u1") == int(hashlib.sha1(b"s.u1").hexdigest()[:15], 16) / 0xFFFFFFFFFFFFFFF
    assert np.all(at_80[at_90 == 1] == 1), "a key on b stays on b when b grows"
    assert abs((at_80 == 1).mean() - 0.2) < 0.01
    salted = np.array([other_salt._arm_at(other_salt.fraction(k)) for k in keys])
    assert (salted != at_90).mean() > 0.1, "a new salt reshuffles"


def test_a_feature_key_assigns_each_row_by_its_value_as_text_whatever_the_column_holds():
    from netfab.serve.columns import ByteSlices
    from netfab.serve.experiment import Experiment

    by_item = Experiment.from_dict({"endpoint": "b", "arms": {"a": 1, "b": 1}, "assign_by": "feature:item_id",
                                    "salt": "s"}, "x")
    by_price = Experiment.from_dict({"endpoint": "b", "arms": {"a": 1, "b": 1}, "assign_by": "feature:price",
                                     "salt": "s"}, "x")
    items = [f"i{i}" for i in range(200)]
    expected = np.array([by_item._arm_at(by_item.fraction(item)) for item in items])
    assert 0 < expected.mean() < 1
    # one row, as REST (str), numpy (np.str_) and OIP binary (bytes cut from the body) hold it
    for i in (0, 1, 7):
        assert by_item.assign({"item_id": np.array([items[i]], dtype=object)}, 1, None) == expected[i]
        assert by_item.assign({"item_id": np.array([items[i]])}, 1, None) == expected[i]
        body = len(items[i]).to_bytes(4, "little") + items[i].encode()
        column = ByteSlices(body, np.array([4]), np.array([len(items[i])]))
        assert by_item.assign({"item_id": column}, 1, None) == expected[i]
    # many rows: each by its own value, repeated values once
    rows = np.array(items + items[:50], dtype=object)
    np.testing.assert_array_equal(by_item.assign({"item_id": rows}, len(rows), None),
                                  np.concatenate([expected, expected[:50]]))
    # a number's key is its shortest text: 83.0 -> "83.0", the same from the memo as from the hash
    prices = np.array([83.0, 0.5, 83.0], dtype=np.float32)
    want = [by_price._arm_at(by_price.fraction(text)) for text in ("83.0", "0.5", "83.0")]
    assert [by_price.assign({"price": prices[i:i + 1]}, 1, None) for i in range(3)] == want


def test_fab_serve_refuses_a_broken_experiment_file_in_one_line(trained_zip, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"endpoint": "deep_v1", "arms": {"deep_v1": 1}}))
    result = run_fab("serve", f"--model={trained_zip}", f"--experiment={path}", "--port=0", timeout=300)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "also a served model's name" in errors[0], result.stderr[-2000:]


def test_a_gs_model_repository_is_every_zip_under_its_prefix(gcs):
    """On the GCS emulator, through the official client as in production."""
    from netfab.serve.model_set import find_model_zips

    for name in ("models/deep_v1/r1/model.zip", "models/rnn_v1/r2/model.zip", "models/notes.txt", "other/model.zip"):
        gcs.put(name, b"bytes")
    assert find_model_zips(gcs.uri("models/")) == [gcs.uri("models/deep_v1/r1/model.zip"),
                                                   gcs.uri("models/rnn_v1/r2/model.zip")]
    with pytest.raises(NetfabError, match="no model zips"):
        find_model_zips(gcs.uri("empty/"))


def test_workers_all_take_a_relabel_and_a_reweight(repository, experiment_file, tmp_path):
    """fab serve --workers=2: a change sent to one worker reaches the other (fresh connections reach both)."""
    stable, canary = _version(repository["stable"]), _version(repository["canary"])
    with ServerProcess(repository["folder"], "--workers=2", f"--admin-token={TOKEN}", f"--experiment={experiment_file}",
                       f"--label=deep_v1/labels/stable={stable}", f"--label=deep_v1/labels/canary={canary}",
                       log_path=tmp_path / "serve.log") as server:
        body = json.dumps({"instances": fixture_rows(1)}).encode()
        relabel = call(server.port, "PUT", "/admin/models/deep_v1/labels/stable", {"version": canary}, headers=ADMIN)
        assert relabel.status == 200 and relabel.body["workers"] == 2, relabel.body
        reweight = call(server.port, "PUT", "/admin/experiment", {"endpoint": "bookings", "arms": {STABLE: 1}},
                        headers=ADMIN)
        assert reweight.status == 200, reweight.body
        for i in range(20):  # each call a new connection, which the kernel hands to either worker
            stable_answer = call(server.port, "POST", "/v1/models/deep_v1:predict", body)
            canary_answer = call(server.port, "POST", "/v1/models/deep_v1/labels/canary:predict", body)
            assert stable_answer.body["predictions"] == canary_answer.body["predictions"]
            assert call(server.port, "POST", ENDPOINT, body).headers["Netfab-Arm"] == STABLE


def test_the_request_log_and_the_experiment_file_work_on_gs(gcs):
    """On the GCS emulator: shards are published whole to a gs:// prefix; a changed gs:// experiment is re-read."""
    from types import SimpleNamespace

    from netfab.serve.app import _read_text
    from netfab.serve.request_log import RequestLog, ScoredRows

    log = RequestLog(gcs.uri("request-log"), fraction=1.0)
    model = SimpleNamespace(name="deep_v1", version="v1", id_column="impression_id")
    rows = fixture_rows(3)
    body = json.dumps({"instances": rows}).encode()
    columns = {"country": np.array([r["country"] for r in rows], dtype=object),
               "price": np.array([r["price"] for r in rows], dtype=np.float32)}
    log.observe(ScoredRows("bookings", STABLE, "live", model, columns, np.array([0.1, 0.2, 0.3], dtype=np.float32),
                           "r1", True, body))
    log.close()
    [shard] = gcs.names("request-log/")
    lines = [json.loads(line) for line in gcs.client.bucket(gcs.bucket).blob(shard).download_as_text().splitlines()]
    assert [(r["impression_id"], r["price"], r["score"], r["arm"]) for r in lines] == [
        (row["impression_id"], row["price"], score, STABLE) for row, score in zip(rows, (0.1, 0.2, 0.3))]

    gcs.put("experiments/bookings.json", b'{"endpoint": "bookings", "arms": {"deep_v1": 1}}')
    assert '"deep_v1": 1' in _read_text(gcs.uri("experiments/bookings.json"))
    gcs.put("experiments/bookings.json", b'{"endpoint": "bookings", "arms": {"rnn_v1": 1}}')
    assert '"rnn_v1": 1' in _read_text(gcs.uri("experiments/bookings.json"))
