"""Servers on loopback for the storage and dataset tests.

- `GcsEmulator`: the real `gcp-storage-emulator` from PyPI in its own process, data on disk
  (so a test can damage a stored object behind its checksums). Used through the official
  client with STORAGE_EMULATOR_HOST, exactly as production uses Cloud Storage.
- `FaultProxy`: a plain HTTP proxy in front of the emulator that records every request and
  can answer some with an error (a transient 503, a 403) or hold one forever (a connection
  that stalls mid-upload), which the emulator itself cannot do.
- `FakeBigQuery`: a small server answering the BigQuery v2 REST calls that
  netfab/dataset/bigquery_engine.py makes, recording each one. What is faked and why is at its class.
"""
import datetime
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class GcsEmulator:
    """gcp-storage-emulator on 127.0.0.1, storing under `data_dir`."""

    def __init__(self, data_dir: Path):
        self.data_dir, self.port = Path(data_dir), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = self.data_dir / "emulator.log"
        with open(self.log, "wb") as log:  # a file, not a pipe nobody drains
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gcp_storage_emulator", "-d", str(self.data_dir), "start",
                 "--host", "127.0.0.1", "--port", str(self.port), "--quiet"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).read()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the GCS emulator exited: {self.log.read_text()[-2000:]}")
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the GCS emulator did not answer within 30 s")

    def stored_file(self, bucket: str, name: str) -> Path:
        """Where the emulator keeps an object's bytes (its metadata, checksums included, is apart)."""
        return self.data_dir / ".cloudstorage" / bucket / name

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class FaultProxy:
    """Forwards HTTP to `target_url`, records (method, path, status), and injects faults by rule."""

    def __init__(self, target_url: str):
        self.target = target_url.removeprefix("http://")
        self.requests: list[tuple[str, str, int]] = []
        self.rules: list[dict] = []
        self.lock = threading.Lock()
        self.stalled = threading.Event()  # set when a request is being held
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rule = proxy._rule_for(self.command, self.path)
                if rule and rule["action"] == "stall":
                    proxy.requests.append((self.command, self.path, 0))
                    proxy.stalled.set()
                    proxy.release.wait(60)
                    self.close_connection = True
                    return
                if rule:
                    status = rule["status"]
                    payload = json.dumps({"error": {"code": status, "message": f"injected {status}",
                                                    "errors": [{"message": f"injected {status}"}]}}).encode()
                    self._reply(status, [("Content-Type", "application/json")], payload)
                    return
                upstream = http.client.HTTPConnection(proxy.target, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}  # Host kept: links point back here
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self._reply(answer.status, [(k, v) for k, v in answer.getheaders()
                                            if k.lower() not in ("content-length", "transfer-encoding", "connection")], data)
                upstream.close()

            def _reply(self, status, headers, data):
                proxy.requests.append((self.command, self.path, status))
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_rule(self, method: str, path_pattern: str, action: str = "status", status: int = 503,
                 times: int = 1, after: int = 0) -> None:
        """Let `after` matching requests through, then answer the next `times` with `status`, or
        hold them until the proxy stops (action='stall')."""
        self.rules.append({"method": method, "pattern": re.compile(path_pattern), "action": action,
                           "status": status, "left": times, "skip": after})

    def _rule_for(self, method: str, path: str):
        with self.lock:
            return self._match(method, path)

    def _match(self, method: str, path: str):
        for rule in self.rules:
            if rule["left"] and rule["method"] == method and rule["pattern"].search(path):
                if rule["skip"]:
                    rule["skip"] -= 1
                    return None
                rule["left"] -= 1
                return rule
        return None

    def count(self, method: str, path_pattern: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and re.search(path_pattern, p))

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class FakeBigQuery:
    """The BigQuery v2 REST calls of netfab/dataset/bigquery_engine.py, answered on loopback and recorded.

    Why a fake: no BigQuery emulator that runs here supports extract jobs (bqemulator needs a
    DuckDB extension it cannot download; crucible-emulator supports neither extract jobs nor
    query parameters), and the real service needs a cloud account. What is real around it: the
    official google-cloud-bigquery client builds every request (so the job configurations the
    tests assert are what BigQuery would receive), the SQL of a query job is executed for real
    by DuckDB over a local warehouse (transpiled from BigQuery's dialect, as the duckdb engine
    does), and an extract job writes its shards into the real GCS emulator.

    What is faked: jobs.insert, jobs.get, datasets.insert and tables.patch answer with the
    resources BigQuery documents, holding a query job RUNNING for `running_polls` polls; the
    export encodes rows as BigQuery's NDJSON export does (INT64 as JSON strings, NULL fields
    left out), which is why the query casts counts to FLOAT64 and the label to BOOL.
    `fail_query` makes the query job end DONE with an errorResult; `fail_dry_run` answers the
    dry run with a 400, as BigQuery does for invalid SQL.
    """

    def __init__(self, warehouse: Path, storage_client, running_polls: int = 1):
        self.warehouse, self.storage_client, self.running_polls = Path(warehouse), storage_client, running_polls
        self.calls: list[tuple[str, str, dict | None]] = []  # (method, path, body)
        self.jobs: dict[str, dict] = {}
        self.tables: dict[str, object] = {}  # "project.dataset.table" -> pyarrow.Table
        self.fail_query: str | None = None
        self.fail_dry_run: str | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                path = self.path.split("?")[0]
                fake.calls.append((self.command, path, body))
                try:
                    status, answer = fake.answer(self.command, path, body)
                except Exception as error:  # a 400, not a dropped connection the client would retry
                    status, answer = 400, {"error": {"code": 400, "message": f"fake BigQuery: {error!r}"}}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _any

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def job_configs(self, kind: str) -> list[dict]:
        """The `configuration` of every jobs.insert of a kind (query | extract)."""
        return [b["configuration"] for m, p, b in self.calls
                if m == "POST" and p.endswith("/jobs") and kind in b["configuration"]]

    # --- the REST surface ---------------------------------------------------------------

    def answer(self, method: str, path: str, body):
        route = path.removeprefix("/bigquery/v2")
        if method == "POST" and re.fullmatch(r"/projects/[^/]+/jobs", route):
            return self._insert_job(body)
        match = re.fullmatch(r"/projects/[^/]+/jobs/([^/]+)", route)
        if method == "GET" and match:
            return self._get_job(match.group(1))
        match = re.fullmatch(r"/projects/([^/]+)/datasets", route)
        if method == "POST" and match:
            return 200, {**body, "id": f"{match.group(1)}:{body['datasetReference']['datasetId']}"}
        match = re.fullmatch(r"/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)", route)
        if method == "PATCH" and match:
            table = self.tables[".".join(match.groups())]
            return 200, {"tableReference": dict(zip(("projectId", "datasetId", "tableId"), match.groups())),
                         "numRows": str(table.num_rows), "expirationTime": body.get("expirationTime"),
                         "type": "TABLE"}
        return 404, {"error": {"code": 404, "message": f"fake BigQuery: no route for {method} {path}"}}

    def _insert_job(self, job: dict):
        config = job["configuration"]
        reference = job["jobReference"]
        if config.get("dryRun"):
            if self.fail_dry_run:
                return 400, {"error": {"code": 400, "message": self.fail_dry_run,
                                       "errors": [{"reason": "invalidQuery", "message": self.fail_dry_run}]}}
            return 200, {**job, "status": {"state": "DONE"},
                         "statistics": {"totalBytesProcessed": "123456789",
                                        "query": {"totalBytesProcessed": "123456789"}}}
        job = {**job, "id": f"{reference['projectId']}:{reference['jobId']}", "status": {"state": "RUNNING"},
               "statistics": {"creationTime": str(int(time.time() * 1000))}, "polls": 0}
        if "query" in config:
            self._run_query(job)
        else:
            self._extract(job)
        self.jobs[reference["jobId"]] = job
        return 200, self._public(job)

    def _get_job(self, job_id: str):
        job = self.jobs.get(job_id)
        if job is None:
            return 404, {"error": {"code": 404, "message": f"Not found: Job {job_id}"}}
        job["polls"] += 1
        if job["polls"] > (self.running_polls if "query" in job["configuration"] else 0):
            job["status"] = job.pop("final_status", {"state": "DONE"})
        return 200, self._public(job)

    @staticmethod
    def _public(job: dict) -> dict:
        return {k: v for k, v in job.items() if k not in ("polls", "final_status")}

    def _run_query(self, job: dict) -> None:
        from netfab.dataset import duckdb_engine
        from netfab.dataset.make import PARAM_TYPES

        config = job["configuration"]["query"]
        if self.fail_query:
            job["final_status"] = {"state": "DONE", "errorResult": {"reason": "invalidQuery", "message": self.fail_query},
                                   "errors": [{"reason": "invalidQuery", "message": self.fail_query}]}
            return
        values = {p["name"]: PARAM_TYPES[p["parameterType"]["type"]](p["parameterValue"]["value"])
                  for p in config.get("queryParameters", [])}
        con, _ = duckdb_engine.connect(self.warehouse, duckdb_engine.tables_read(config["query"]))
        table = con.sql(duckdb_engine.transpile(config["query"], values)).to_arrow_table()
        destination = config["destinationTable"]
        self.tables[f"{destination['projectId']}.{destination['datasetId']}.{destination['tableId']}"] = table
        job["statistics"]["query"] = {"totalBytesProcessed": "123456789", "totalBytesBilled": "124780544"}
        job["statistics"]["totalBytesProcessed"] = "123456789"

    def _extract(self, job: dict) -> None:
        import gzip

        config = job["configuration"]["extract"]
        source = config["sourceTable"]
        table = self.tables[f"{source['projectId']}.{source['datasetId']}.{source['tableId']}"]
        lines = "".join(json.dumps(_bigquery_json(row)) + "\n" for row in table.to_pylist()).encode()
        if config.get("compression") == "GZIP":
            lines = gzip.compress(lines)
        uri = config["destinationUris"][0].replace("*", "000000000000")
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        self.storage_client.bucket(bucket).blob(name).upload_from_string(lines)
        job["statistics"]["extract"] = {"destinationUriFileCounts": ["1"]}


def _bigquery_json(row: dict) -> dict:
    """A row as BigQuery's NDJSON export writes it: INT64 as strings, NULL fields left out."""
    out = {}
    for key, value in row.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = value
        elif isinstance(value, int):
            out[key] = str(value)
        elif isinstance(value, (datetime.date, datetime.datetime)):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def unique_bucket(prefix: str = "netfab-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
