"""Tuning workers on SSH hosts (Fabric): one worker per GPU, each run by the host's netfab checkout.

    from netfab.tune.ssh_hosts import ssh_workers
    workers = ssh_workers(["gpu1", "root@10.0.0.7:2222"], connect_kwargs={"key_filename": "id"},
                          project_dir="/opt/netfab", python="python3")
    run_study(spec, trials=40, workers=workers)

The contract for a host: the project checked out at `project_dir` with netfab importable by
`python` (a plain environment: `pip install -e .` there), the study's storage reachable
(PostgreSQL: every host asks it for trials) and the study folder path writable (each trial's
log and zip go there: shared storage, or the host's own disk). Each worker runs as

    cd <project_dir> && env PYTHONPATH=<project_dir> NETFAB_WORKER=<host/gpuN> NETFAB_STUDY=<spec> CUDA_VISIBLE_DEVICES=<gpu> \\
        <python> -m netfab.tune.worker <study folder> --trials N --heartbeat S --max-failures M

with a pseudo-terminal, so that when the SSH session dies the worker gets SIGHUP and stops
instead of running on as an orphan, giving its trial back to the study; if it cannot (the host
is gone), the storage fails the trial after two missed heartbeats and another worker runs it again. In the GPU image the same line runs with
`python=docker run --rm --gpus all --entrypoint python -v <study>:<study> -w /app netfab:gpu` (see docs/tuning.md).
"""
import dataclasses
import json
import logging
import shlex
import socket

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 10  # seconds to open a session before the host counts as dropped out


class HostLost(Exception):
    """The worker's host could not run it (unreachable, session dropped, broken install)."""


@dataclasses.dataclass
class SshWorker:
    name: str
    host: str  # as given to -H: [user@]host[:port]
    gpu: str  # the CUDA_VISIBLE_DEVICES value for this worker; "" for a CPU worker
    connect_kwargs: dict
    project_dir: str
    python: str

    def command(self, spec, worker_args: list[str]) -> str:
        env = [f"PYTHONPATH={shlex.quote(self.project_dir)}", f"NETFAB_WORKER={shlex.quote(self.name)}",
               f"NETFAB_STUDY={shlex.quote(json.dumps(spec.to_json()))}"]
        if self.gpu:
            env.append(f"CUDA_VISIBLE_DEVICES={self.gpu}")
        return (f"cd {shlex.quote(self.project_dir)} && env {' '.join(env)} {self.python} "
                f"-m netfab.tune.worker {shlex.quote(spec.folder)} {shlex.join(worker_args)}")

    def run(self, spec, worker_args: list[str]) -> tuple[int, str]:
        """Run the worker there until it ends: its exit code and output."""
        from fabric import Connection

        connection = Connection(self.host, connect_timeout=CONNECT_TIMEOUT,
                                connect_kwargs=dict(self.connect_kwargs))
        try:
            result = connection.run(self.command(spec, worker_args), pty=True, hide=True, warn=True,
                                    in_stream=False)
        except (OSError, socket.timeout, EOFError) as error:  # refused, unreachable, reset
            raise HostLost(f"{type(error).__name__}: {error}") from None
        except Exception as error:  # paramiko's SSHException & co: the host is unusable
            if type(error).__module__.startswith(("paramiko", "invoke", "fabric")):
                raise HostLost(f"{type(error).__name__}: {error}") from None
            raise
        finally:
            connection.close()
        if result.exited == -1:  # paramiko's code for a channel closed without an exit status
            tail = (result.stdout.strip().splitlines() or ["no output"])[-1]
            raise HostLost(f"the session closed mid-study ({tail[-200:]})")
        return result.exited, result.stdout


def gpu_count(host: str, connect_kwargs: dict) -> int | None:
    """GPUs that `nvidia-smi -L` lists on `host`, or None when it cannot tell."""
    from fabric import Connection

    try:
        with Connection(host, connect_timeout=CONNECT_TIMEOUT,
                        connect_kwargs=dict(connect_kwargs)) as connection:
            result = connection.run("nvidia-smi -L", hide=True, warn=True, in_stream=False)
    except Exception as error:  # an unreachable host is reported when its worker starts
        log.warning("could not ask %s for its GPUs: %s", host, error)
        return None
    if result.exited != 0:
        return None
    return sum(1 for line in result.stdout.splitlines() if line.startswith("GPU "))


def ssh_workers(hosts: list[str], connect_kwargs: dict, project_dir: str, python: str,
                gpus_per_host: int | None = None, progress=print) -> list[SshWorker]:
    """One worker per GPU of each host (asked with nvidia-smi unless `gpus_per_host` is given);
    a host without GPUs gets one CPU worker."""
    logging.getLogger("paramiko").setLevel(logging.WARNING)  # not two INFO lines per session
    workers = []
    for host in hosts:
        gpus = gpus_per_host if gpus_per_host is not None else gpu_count(host, connect_kwargs)
        devices = [str(g) for g in range(gpus)] if gpus else [""]
        progress(f"host {host}: " + (f"{len(devices)} GPU worker(s)" if gpus else "1 CPU worker (no GPU found)"))
        workers += [SshWorker(f"{host}" + (f"/gpu{d}" if d else ""), host, d, connect_kwargs,
                              project_dir, python) for d in devices]
    return workers
