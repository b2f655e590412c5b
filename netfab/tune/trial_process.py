"""A trial's `fab train` process, forked from a server that has imported TensorFlow once.

    launcher = TrialLauncher()                                   # one per worker
    child = launcher.start(["train", "--variant=deep_v1", ...], env, cwd, folder / "log.txt")
    child.join(60); child.exitcode                               # a multiprocessing.Process

Every fresh `fab train` spends seconds starting Python and importing TensorFlow before it reads
a row, and a trial the study prunes after an epoch or two may train for less than that. The
worker therefore asks multiprocessing's fork server (the "forkserver" start method) for its
trials: a process that imports the training modules once, before TensorFlow has run any op or
started a thread, and forks a fresh child per trial. The child is still a run of its own: the
same `fab` program with the trial's arguments, its environment (NET_* overrides, the study it
reports to, CUDA_VISIBLE_DEVICES), its working directory and its log file, in a process of its
own that exits when the run ends; the reproduce command on the leaderboard does the same in a
fresh interpreter. TensorFlow is not fork-safe once its runtime has started, which is why the
server only imports and never trains.
"""
import multiprocessing
import os
import signal
import threading

# What `fab train` imports before it reads a row: the fork server imports them once.
PRELOAD = ["fabric.main", "netfab.train.loop", __name__]


class TrialLauncher:
    def __init__(self):
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)

    def start(self, args: list[str], env: dict, cwd, log_path) -> multiprocessing.Process:
        """`fab <args>` as a child process writing to `log_path` (appended); join() it."""
        child = self.context.Process(target=run_fab, args=(list(args), dict(env), str(cwd), str(log_path)),
                                     name="fab " + " ".join(args[:1]))
        child.start()
        return child


def run_fab(args: list[str], env: dict, cwd: str, log_path: str) -> None:
    """The child: become the trial's process (environment, folder, log), then run the fab program."""
    threading.Thread(target=_die_with_worker, daemon=True).start()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)  # Python's and TensorFlow's own (C++) output alike
    os.dup2(log, 2)
    os.close(log)
    from fabric.main import program

    program.run(["fab", *args])  # ends with sys.exit(code), which becomes the child's exit code


def stop(child: multiprocessing.Process | None) -> None:
    """SIGTERM a running child, and SIGKILL it if it has not ended 30 s later."""
    if child is not None and child.exitcode is None:
        child.terminate()
        child.join(30)
        if child.exitcode is None:
            child.kill()
            child.join()


def _die_with_worker() -> None:
    """SIGTERM this trial when the worker that started it dies (SSH session gone, pod evicted): an
    orphaned trial would keep writing into a folder that its retry is about to use. The worker,
    not the fork server, is the one to watch: the fork server lives on while a child holds it."""
    multiprocessing.parent_process().join()  # the worker's end of a pipe, closed when it dies
    os.kill(os.getpid(), signal.SIGTERM)
