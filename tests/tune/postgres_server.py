"""A real PostgreSQL for tests: Debian's `postgresql` binaries, a cluster of our own in a temp
folder on a loopback port, owned by the `postgres` user (PostgreSQL refuses to run as root).

    server = PostgresServer(tmp_path / "pg")    # initdb, pg_ctl start, CREATE DATABASE netfab
    server.url                                  # "postgresql://postgres@127.0.0.1:40123/netfab"
    server.stop()

`missing_reason()` says why none can start here (no binaries, no postgres user); the fixture
skips with it. .ci/run installs the package.
"""
import getpass
import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from tests.tune.sshd_hosts import free_port

DATABASE = "netfab"


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def missing_reason() -> str:
    if _bin_dir() is None:
        return "PostgreSQL's initdb/pg_ctl not found: apt-get install postgresql (.ci/run does)"
    if getpass.getuser() == "root":
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run PostgreSQL as"
    return ""


class PostgresServer:
    def __init__(self, folder: Path):
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        self.bin = _bin_dir()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data, self.log = self.folder / "data", self.folder / "postgres.log"
        self.port = free_port()
        if getpass.getuser() == "root":  # the cluster belongs to `postgres`, who must reach it
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            for parent in self.folder.parents:  # pytest's tmp folders are 0700
                if parent == Path("/"):
                    break
                os.chmod(parent, os.stat(parent).st_mode | 0o011)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", DATABASE)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if getpass.getuser() == "root":
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}{log}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
