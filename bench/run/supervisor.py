"""A run's process tree (step: one run's child -> the run, and a supervisor that ends everything the run started).

The child's first act (bench.run.child.main) is to split in two: this process stays behind as the run's supervisor
and its fork runs the config. The supervisor is a child subreaper (prctl PR_SET_CHILD_SUBREAPER, Linux 3.4+): every
process the run starts and leaves behind, a daemon that double-forks into a new session included, is re-parented to
it rather than to init, so the whole tree stays its descendants, listed by psutil from the kernel's parent links.
When the run ends (it exits, crashes or is killed), the supervisor kills every descendant left, removes the run's
temporary folder (`run_tmp`: the exports' AOTInductor and ONNX folders) and exits with the run's own status. The
launcher's time limit and a stopped sweep kill the same tree (`kill_tree`) before the supervisor itself; when the
process that started the supervisor dies (the sweep, the warm server), the kernel sends it SIGTERM
(PR_SET_PDEATHSIG) and it does the same before it ends.

Why a tracked tree and not a cgroup: a cgroup holds a run's processes whatever they do, but an unprivileged user can
only create one under a subtree delegated to them (root, or systemd's `Delegate=`/`systemd-run --user --scope` with
cgroup v2), which CI containers, Ray workers and shared GPU boxes mostly do not give; a subreaper needs no privilege.
What a tracked tree cannot hold: a process that another, unrelated process starts for the run (a systemd --user or
D-Bus activated service, a job handed to a server), and a process that makes itself a subreaper's child elsewhere.
Elsewhere than Linux the run is the child process itself, as before: its process group is what the time limit kills.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
SUPERVISOR_ENV = "DNNBENCH_SUPERVISOR_PID"  # in the run's environment: the pid of its supervisor
RUN_TMP_ENV = "DNNBENCH_RUN_TMP"  # in the run's environment: its temporary folder (inside its private job folder)


class _Stop(Exception):
    """SIGTERM (the launcher, or the death of the supervisor's parent) reached the supervisor."""


def prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def run_tmp() -> str | None:
    """The run's own temporary folder (created here), or None outside a supervised run (then the system's)."""
    folder = os.environ.get(RUN_TMP_ENV)
    if not folder:
        return None
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def supervise(tmp: Path | None) -> bool:
    """Fork the run and supervise it: returns True in the fork (which runs the config); this process becomes the
    supervisor and never returns (it exits with the run's status). Returns False, unforked, where there is no
    subreaper (not Linux, or prctl refused): the run is this process, as before. `tmp`: the run's temporary folder,
    removed with the run."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl(PR_SET_CHILD_SUBREAPER, 1)
    except OSError:
        return False
    sys.stdout.flush()
    sys.stderr.flush()
    supervisor = os.getpid()
    pid = os.fork()
    if pid == 0:  # the run: the subreaper setting is not inherited
        os.environ[SUPERVISOR_ENV] = str(supervisor)
        if tmp is not None:
            os.environ[RUN_TMP_ENV] = str(tmp)
        return True
    code = 1
    try:
        code = watch(pid, tmp)
    finally:
        exit_as(code)
    return False  # unreachable: exit_as ends the process


def watch(pid: int, tmp: Path | None) -> int:
    """Reap the run (and every orphan re-parented here) until the run ends or SIGTERM comes; then end the tree and
    remove `tmp`. Returns the run's exit code (negative: the signal that killed it)."""
    def stop(signum, frame):
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sweep's to handle; it stops runs through their launcher
    parent = os.getppid()
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # the sweep or warm server died: end the tree, not just the run
    except OSError:
        pass
    code = -signal.SIGTERM
    try:
        if os.getppid() != parent:  # it died before the watch was set
            raise _Stop
        while True:
            reaped, status = os.waitpid(-1, 0)  # orphans of the run are this process's children now
            if reaped == pid:
                code = os.waitstatus_to_exitcode(status)
                break
    except (_Stop, ChildProcessError):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up below is not cut short by a second one
        kill_tree(os.getpid())
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return code


def exit_as(code: int) -> None:
    """End this process as the run ended: the same exit code, or killed by the same signal."""
    sys.stdout.flush()
    sys.stderr.flush()
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be caught: no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        time.sleep(1.0)  # the signal is delivered before this returns; a blocked one falls through to the exit
    os._exit(code if code >= 0 else 128 - code)


def kill_tree(root: int, rounds: int = 100) -> int:
    """SIGKILL every live descendant of `root` (not `root` itself), round after round until none is left (one forked
    while a round went by is caught by the next; while `root` is a subreaper, orphans stay its descendants); reaps
    those that were this process's children. Returns how many were killed."""
    import psutil

    killed = 0
    for _ in range(rounds):
        try:
            tree = psutil.Process(root).children(recursive=True)
        except psutil.Error:
            return killed
        alive = []
        for process in tree:
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    process.kill()
                    alive.append(process)
            except psutil.Error:
                pass
        if root == os.getpid():
            reap()
        if not alive:
            return killed
        killed += len(alive)
        psutil.wait_procs(alive, timeout=0.5)
    return killed


def reap() -> None:
    """Collect this process's exited children (zombies), without waiting for live ones."""
    for _ in exited_children():
        pass


def exited_children() -> Iterator[tuple[int, int]]:
    """(pid, exit code as `subprocess` reads it) of each child of this process that has exited, reaping it; live
    children are not waited for."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, os.waitstatus_to_exitcode(status)
