"""`fab serve` and `fab inspect` against hostile input, as an attacker or a careless client sends it:
zip bombs and damaged zips, malformed bodies, bad HTTP, slow clients, too many connections, and
clients that keep sending through a SIGTERM drain. Real processes, real HTTP on loopback.
"""
import hashlib
import http.client
import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile

import pytest

from netfab import model_zip
from tests.helpers import PROJECT, fab_command, fixture_rows, user_env
from tests.serve.helpers import ServerProcess, call

TOKEN = "hostile-test-token"
PREDICT = "/v1/models/deep_v1:predict"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
IDLE_TIMEOUT_S = 2
MAX_CONNECTIONS = 40
BOMB_BYTES = 2 << 30
RSS_LIMIT_MB = 200


@pytest.fixture(scope="module")
def server(trained_zip, tmp_path_factory):
    with ServerProcess(trained_zip, "--max-body-mb=1", f"--admin-token={TOKEN}", "--timeout=3",
                       f"--idle-timeout={IDLE_TIMEOUT_S}", f"--max-connections={MAX_CONNECTIONS}",
                       log_path=tmp_path_factory.mktemp("hostile") / "serve.log") as process:
        yield process


@pytest.fixture(scope="module")
def zip_bomb(trained_zip, tmp_path_factory):
    """The trained zip plus a 2 GiB member of zeros (a few MB deflated), listed in its manifest
    with its true size and checksum: every check that reads the member whole would pass it."""
    bomb = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    name, block = "saved_model/assets/bomb.bin", bytes(16 << 20)
    digest = hashlib.sha256()
    for _ in range(BOMB_BYTES // len(block)):
        digest.update(block)
    with zipfile.ZipFile(trained_zip) as old, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as new:
        manifest = json.loads(old.read(model_zip.MANIFEST))
        manifest["files"][name] = {"sha256": digest.hexdigest(), "bytes": BOMB_BYTES}
        for member in old.namelist():
            data = old.read(member)
            new.writestr(member, json.dumps(manifest) if member == model_zip.MANIFEST else data)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with new.open(info, "w", force_zip64=True) as stream:
            for _ in range(BOMB_BYTES // len(block)):
                stream.write(block)
    return bomb


def peak_rss_mb(*fab_args, timeout=300) -> tuple[float, subprocess.CompletedProcess]:
    """Run `fab ARGS` as the only child of a fresh Python process; (its peak RSS in MB, the result)."""
    measure = ("import resource, subprocess, sys, json;"
               "r = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
               "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,"
               " r.returncode, r.stdout, r.stderr]))")
    out = subprocess.run([sys.executable, "-c", measure, *fab_command(*fab_args)], cwd=PROJECT, env=user_env(),
                         capture_output=True, text=True, timeout=timeout, check=True).stdout
    peak, code, stdout, stderr = json.loads(out)
    return peak, subprocess.CompletedProcess(fab_args, code, stdout, stderr)


def proc_status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith(field + ":"))


# --- zips --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_zip_bomb_is_refused_by_fab_inspect_in_bounded_memory(zip_bomb):
    peak, result = peak_rss_mb("inspect", f"--model={zip_bomb}")
    assert result.returncode == 1 and "bomb.bin would inflate" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert peak <= RSS_LIMIT_MB, f"fab inspect peaked at {peak:.0f} MB"


@pytest.mark.slow
def test_a_zip_bomb_is_refused_by_fab_serve_in_bounded_memory(zip_bomb):
    peak, result = peak_rss_mb("serve", f"--model={zip_bomb}", "--port=0")
    assert result.returncode == 1 and "error:" in result.stderr and "bomb.bin would inflate" in result.stderr
    assert "Traceback" not in result.stderr
    assert peak <= RSS_LIMIT_MB, f"fab serve peaked at {peak:.0f} MB before refusing the zip"


@pytest.mark.slow
def test_a_zip_bomb_sent_to_the_admin_swap_is_a_400_in_bounded_memory(server, zip_bomb, trained_zip):
    pid = server.process.pid
    rss_before, peak_before = proc_status_mb(pid, "VmRSS"), proc_status_mb(pid, "VmHWM")
    reply = call(server.port, "POST", "/admin/model", {"model": str(zip_bomb)}, headers=ADMIN, timeout=120)
    assert reply.status == 400 and "bomb.bin would inflate" in reply.body["error"], reply.body
    assert "still serving deep_v1" in reply.body["error"]
    peak_after = proc_status_mb(pid, "VmHWM")
    assert peak_after <= max(peak_before, rss_before + RSS_LIMIT_MB), \
        f"the swap raised the server's peak from {peak_before:.0f} to {peak_after:.0f} MB"
    assert call(server.port, "POST", PREDICT, {"instances": fixture_rows(2)}).status == 200


def test_a_damaged_zip_sent_to_the_admin_swap_is_a_400_naming_the_member(server, trained_zip, tmp_path):
    data = bytearray(open(trained_zip, "rb").read())
    with zipfile.ZipFile(trained_zip) as archive:
        info = archive.getinfo("model.keras")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start + 100, start + 110):  # inside the deflated data
        data[offset] ^= 0xFF
    (tmp_path / "damaged.zip").write_bytes(bytes(data))
    reply = call(server.port, "POST", "/admin/model", {"model": str(tmp_path / "damaged.zip")},
                 headers=ADMIN, timeout=120)
    assert reply.status == 400 and "model.keras is damaged" in reply.body["error"], reply.body


# --- malformed bodies and bad HTTP ---------------------------------------------------------------
def _body_with_title(title_json: bytes, rows=1) -> bytes:
    """A valid request whose first row's title is replaced by raw JSON bytes (an escape, a bad byte)."""
    body = json.dumps({"instances": fixture_rows(rows)}).encode()
    start = body.index(b'"title": "') + len(b'"title": "')
    return body[:start] + title_json + body[body.index(b'"', start):]


@pytest.mark.parametrize("body, words", [
    (b"[" * 100_000, "depth"),
    (_body_with_title(b"\xff\xfe"), "UTF-8"),
    (_body_with_title(b"\xff\xfe", rows=200), "UTF-8"),  # large enough for the compiled parser
    (_body_with_title(b"\\ud800"), "surrogate"),
    (_body_with_title(b"\\ud800", rows=200), "surrogate"),
    (_body_with_title(b"\\udfff"), "surrogate"),
], ids=["nesting", "invalid-utf8", "invalid-utf8-large", "lone-surrogate", "lone-surrogate-large",
        "lone-low-surrogate"])
def test_malformed_bodies_are_400_json_without_a_traceback(server, body, words):
    reply = call(server.port, "POST", PREDICT, body, headers={"Content-Type": "application/json"})
    assert reply.status == 400 and words in reply.body["error"], reply.body
    assert "Traceback" not in server.log_tail()


def raw_exchange(port, data: bytes, timeout=10) -> tuple[int, dict]:
    """Send raw bytes on a fresh connection; the status and JSON body of the server's answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return _read_answer(sock)


def _read_answer(sock) -> tuple[int, dict]:
    reply = http.client.HTTPResponse(sock)
    reply.begin()
    assert reply.getheader("Content-Type") == "application/json", reply.getheaders()
    return reply.status, json.loads(reply.read())


@pytest.mark.parametrize("request_bytes", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 100_000 + b"\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
    b"NOT HTTP AT ALL\r\n\r\n",
], ids=["100-kb-header", "200-headers", "garbage"])
def test_requests_aiohttp_cannot_parse_are_400_json(server, request_bytes):
    status, body = raw_exchange(server.port, request_bytes)
    assert status == 400 and "could not be read as HTTP" in body["error"]
    assert "Traceback" not in server.log_tail()


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(server):
    started = time.monotonic()
    status, body = raw_exchange(server.port, f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                             f"application/json\r\nContent-Length: {40 << 20}\r\n\r\n".encode())
    assert status == 413 and "over the 1 MB limit" in body["error"]
    assert time.monotonic() - started < 2


def test_a_body_that_trickles_in_gets_408_within_the_request_timeout(server):
    started = time.monotonic()
    status, body = raw_exchange(server.port, f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: "  # then only "{"
                                             f"application/json\r\nContent-Length: 1000\r\n\r\n{{".encode())
    assert status == 408 and "did not arrive within 3 s" in body["error"]
    assert time.monotonic() - started < 3 + 2


# --- slow clients and too many connections -------------------------------------------------------
def _open_fds(pid) -> int:
    import os

    return len(os.listdir(f"/proc/{pid}/fd"))


def test_clients_sending_headers_a_byte_at_a_time_are_closed_after_the_idle_timeout(server):
    """A bounded slowloris (below the connection cap): each connection gets a byte a second."""
    fds_before = _open_fds(server.process.pid)
    sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(MAX_CONNECTIONS // 2)]
    request, started, closed_after = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", time.monotonic(), {}
    for second in range(IDLE_TIMEOUT_S + 4):
        for index, sock in enumerate(sockets):
            if index in closed_after:
                continue
            try:
                sock.sendall(request[second:second + 1] or b"a")
            except OSError:  # reset or broken pipe: the server closed it
                closed_after[index] = time.monotonic() - started
        # the server keeps answering others meanwhile
        assert call(server.port, "GET", "/healthz", timeout=5).status == 200
        time.sleep(1)
    for sock in sockets:
        sock.close()
    assert len(closed_after) == len(sockets), f"{len(sockets) - len(closed_after)} slow connections still open"
    assert max(closed_after.values()) <= IDLE_TIMEOUT_S + 3
    assert _open_fds(server.process.pid) <= fds_before + 2


def test_connections_beyond_the_cap_get_503_at_once_and_room_comes_back(server):
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(MAX_CONNECTIONS + 10)]
    time.sleep(0.5)  # well within the idle timeout: the accepted ones are still open and silent
    answered, _, _ = select.select(held, [], [], 0)
    refused = [_read_answer(sock) for sock in answered]
    assert len(refused) >= 10 and all(status == 503 and "too many open connections" in body["error"]
                                      for status, body in refused)
    for sock in held:
        sock.close()
    time.sleep(0.5)
    assert call(server.port, "GET", "/healthz").status == 200


# --- the drain ---------------------------------------------------------------------------------
@pytest.fixture
def drained_server(trained_zip, tmp_path):
    with ServerProcess(trained_zip, "--max-batch-rows=100", log_path=tmp_path / "serve.log") as process:
        yield process


def test_sigterm_loses_no_request_of_clients_that_keep_sending_on_kept_alive_connections(drained_server):
    """16 clients send without pause on kept-alive connections before, during and after SIGTERM.

    Every request the server takes is answered in full; during the drain the answers say
    Connection: close; afterwards clients find the port closed (retryable). Nothing is cut.
    """
    port, body = drained_server.port, json.dumps({"instances": fixture_rows(20)}).encode()
    outcomes, lock, stop_at = {"ok": 0, "close": 0, "refused": 0, "cut": []}, threading.Lock(), time.monotonic() + 60

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop_at:
            try:
                connection.request("POST", PREDICT, body=body, headers={"Content-Type": "application/json"})
                reply = connection.getresponse()
                answer = reply.read()
            except ConnectionRefusedError:
                with lock:
                    outcomes["refused"] += 1
                return
            except (OSError, http.client.HTTPException) as error:  # reset, server disconnected, broken pipe
                with lock:
                    outcomes["cut"].append(repr(error))
                return
            with lock:
                if reply.status == 200 and b"predictions" in answer:
                    outcomes["ok"] += 1
                else:
                    outcomes["cut"].append(f"{reply.status}: {answer[:200]!r}")
                outcomes["close"] += reply.getheader("Connection") == "close"
            if reply.getheader("Connection") == "close":
                connection.close()  # http.client would reconnect on its own; say so plainly

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    drained_server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(90)
    assert drained_server.process.wait(60) == 0
    assert outcomes["cut"] == [], outcomes
    assert outcomes["refused"] == 16 and outcomes["close"] >= 16 and outcomes["ok"] > 16, outcomes
