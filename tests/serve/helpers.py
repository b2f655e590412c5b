"""`fab serve` in a real subprocess on a free loopback port, and a tiny HTTP client for it."""
import http.client
import json
import socket
import subprocess
import time
from dataclasses import dataclass, field

from tests.helpers import PROJECT, fab_command, user_env

STARTUP_SECONDS = 180  # a loaded 2-core CI machine takes ~15 s to import TF and load a model


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Reply:
    status: int
    body: dict
    headers: dict = field(default_factory=dict)


def call(port: int, method: str, path: str, body=None, headers=None, timeout=60) -> Reply:
    """One request on a fresh connection; `body` is a dict (sent as JSON), bytes or None."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {"text": raw.decode()}
        return Reply(response.status, parsed, dict(response.getheaders()))
    finally:
        connection.close()


class ServerProcess:
    """`fab serve --model=ZIP --port=P ...`; remembers the /readyz answers it saw while starting."""

    def __init__(self, zip_uri: str, *options: str, log_path=None):
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "w") if log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(fab_command("serve", f"--model={zip_uri}", f"--port={self.port}", *options),
                                        cwd=PROJECT, env=user_env(), stdout=self._log, stderr=subprocess.STDOUT)
        self.readiness_seen: list[int] = []

    def __enter__(self) -> "ServerProcess":
        """`with ServerProcess(...) as server:` ready to answer inside, stopped after."""
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_ready(self) -> "ServerProcess":
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fab serve exited with {self.process.returncode}: {self.log_tail()}")
            try:
                status = call(self.port, "GET", "/readyz", timeout=5).status
            except OSError:  # not listening yet
                time.sleep(0.2)
                continue
            self.readiness_seen.append(status)
            if status == 200:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"fab serve was not ready within {STARTUP_SECONDS} s: {self.log_tail()}")

    def log_tail(self) -> str:
        return open(self.log_path).read()[-3000:] if self.log_path else "(no log kept)"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log_path:
            self._log.close()
        return self.process.returncode

    def rss_mb(self) -> float:
        """Resident memory of the serving Python process (fab runs the server in-process)."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0
