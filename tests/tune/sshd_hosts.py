"""Real SSH "hosts" for tests: Debian's openssh-server on 127.0.0.1, one sshd per port.

    hosts = SshHosts(tmp_path, count=2)     # generated host and client keys, temp authorized_keys
    hosts.host_strings                      # ["root@127.0.0.1:40123", "root@127.0.0.1:40124"]
    hosts.kill(1)                           # that sshd and its open sessions end, as a host dropping out
    hosts.stop()

Both "hosts" are this machine, so they see the same project checkout and study folder, which
stands in for the shared storage of a real cluster.
"""
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SshHosts:
    def __init__(self, folder: Path, count: int = 2):
        if not Path(SSHD).exists():
            raise RuntimeError(f"{SSHD} not found: apt-get install openssh-server (.ci/run does)")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation dir
        self.client_key = self.folder / "client_key"
        _keygen(self.client_key)
        (self.folder / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        self.user = getpass.getuser()
        self.ports, self.daemons = [], []
        for number in range(count):
            host_key = self.folder / f"host_key_{number}"
            _keygen(host_key)
            port = free_port()
            config = self.folder / f"sshd_config_{number}"
            config.write_text("\n".join([
                f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
                f"AuthorizedKeysFile {self.folder / 'authorized_keys'}",
                f"PidFile {self.folder / f'sshd_{number}.pid'}",
                "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "UsePAM no",
                "MaxStartups 50", "MaxSessions 50", ""]))
            log = open(self.folder / f"sshd_{number}.log", "w")
            self.daemons.append(subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                                 stdout=log, stderr=subprocess.STDOUT))
            self.ports.append(port)
        for port in self.ports:
            _wait_for_port(port)

    @property
    def host_strings(self) -> list[str]:
        return [f"{self.user}@127.0.0.1:{port}" for port in self.ports]

    def kill(self, number: int) -> None:
        """End sshd `number` and every session it serves, like a machine going away."""
        daemon = self.daemons[number]
        sessions = _children(daemon.pid)
        daemon.kill()
        daemon.wait(timeout=10)
        for pid in sessions:  # per-connection sshd processes this daemon forked
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        for number, daemon in enumerate(self.daemons):
            if daemon.poll() is None:
                self.kill(number)


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _wait_for_port(port: int, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"sshd on 127.0.0.1:{port} did not start within {seconds} s")
