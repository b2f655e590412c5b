"""Trial slots on SSH hosts (Fabric): one slot per GPU, each trial run by the host's netfab checkout.

    from netfab.tune.ssh_hosts import ssh_workers
    workers = ssh_workers(["gpu1", "root@10.0.0.7:2222"], connect_kwargs={"key_filename": "id"},
                          project_dir="/opt/netfab", python="python3")
    run_study(spec, trials=40, workers=workers)

The contract for a host: the project checked out at `project_dir` with netfab importable by
`python` (a plain environment: `pip install -e .` there), and the study folder reachable at
the same path or URI (shared storage). Each trial runs as

    cd <project_dir> && env PYTHONPATH=<project_dir> CUDA_VISIBLE_DEVICES=<gpu> \
        <python> -m netfab.tune.trial_runner <study folder> --index <N>

with a pseudo-terminal, so that when the SSH session dies the trial gets SIGHUP and stops
instead of running on as an orphan. In the GPU image the same line runs with
`python=docker run --rm --gpus all --entrypoint python -v <study>:<study> -w /app netfab:gpu` (see docs/tuning.md).
A host with no reachable sshd, or whose session drops mid-trial, is taken out of the study
and its trial goes back to the queue for the other hosts.
"""
import dataclasses
import logging
import shlex
import socket

from netfab.tune.study import TRIAL_RECORD, StudySpec
from netfab.tune.slots import HostLost

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 10  # seconds to open a session before the host counts as dropped out


@dataclasses.dataclass
class SshSlot:
    name: str
    host: str  # as given to -H: [user@]host[:port]
    gpu: str  # the CUDA_VISIBLE_DEVICES value for this slot; "" for a CPU slot
    connect_kwargs: dict
    project_dir: str
    python: str

    def command(self, spec: StudySpec, index: int) -> str:
        env = [f"PYTHONPATH={shlex.quote(self.project_dir)}"]
        if self.gpu:
            env.append(f"CUDA_VISIBLE_DEVICES={self.gpu}")
        return (f"cd {shlex.quote(self.project_dir)} && env {' '.join(env)} {self.python} "
                f"-m netfab.tune.trial_runner {shlex.quote(spec.folder)} --index {index}")

    def run(self, spec: StudySpec, index: int) -> None:
        from fabric import Connection

        connection = Connection(self.host, connect_timeout=CONNECT_TIMEOUT,
                                connect_kwargs=dict(self.connect_kwargs))
        try:
            result = connection.run(self.command(spec, index), pty=True, hide=True, warn=True,
                                    in_stream=False)
        except (OSError, socket.timeout, EOFError) as error:  # refused, unreachable, reset
            raise HostLost(f"{type(error).__name__}: {error}") from None
        except Exception as error:  # paramiko's SSHException & co: the host is unusable
            if type(error).__module__.startswith(("paramiko", "invoke", "fabric")):
                raise HostLost(f"{type(error).__name__}: {error}") from None
            raise
        finally:
            connection.close()
        # The record is the runner's last act; without it the trial did not finish there.
        if result.exited != 0 or not (spec.trial_dir(index) / TRIAL_RECORD).exists():
            tail = (result.stdout.strip().splitlines() or ["session closed with no output"])[-1]
            raise HostLost(f"trial {index} did not finish (exit {result.exited}): {tail[-300:]}")


def gpu_count(host: str, connect_kwargs: dict) -> int | None:
    """GPUs that `nvidia-smi -L` lists on `host`, or None when it cannot tell."""
    from fabric import Connection

    try:
        with Connection(host, connect_timeout=CONNECT_TIMEOUT,
                        connect_kwargs=dict(connect_kwargs)) as connection:
            result = connection.run("nvidia-smi -L", hide=True, warn=True, in_stream=False)
    except Exception as error:  # an unreachable host is reported when its first trial runs
        log.warning("could not ask %s for its GPUs: %s", host, error)
        return None
    if result.exited != 0:
        return None
    return sum(1 for line in result.stdout.splitlines() if line.startswith("GPU "))


def ssh_workers(hosts: list[str], connect_kwargs: dict, project_dir: str, python: str,
                gpus_per_host: int | None = None, progress=print) -> list[SshSlot]:
    """One slot per GPU of each host (asked with nvidia-smi unless `gpus_per_host` is given);
    a host without GPUs gets one CPU slot."""
    logging.getLogger("paramiko").setLevel(logging.WARNING)  # not two INFO lines per trial
    slots = []
    for host in hosts:
        gpus = gpus_per_host if gpus_per_host is not None else gpu_count(host, connect_kwargs)
        devices = [str(g) for g in range(gpus)] if gpus else [""]
        progress(f"host {host}: " + (f"{len(devices)} GPU slot(s)" if gpus else "1 CPU slot (no GPU found)"))
        slots += [SshSlot(f"{host}" + (f"/gpu{d}" if d else ""), host, d, connect_kwargs,
                          project_dir, python) for d in devices]
    return slots
