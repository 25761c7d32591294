"""The warm server's process (step: launching's fast path, server side: imports once, then one fork per run).

`serve()` imports torch, lightning, torchmetrics, wandb and our packages once, never initialises CUDA (forking after
that is unsafe; the runs initialise it themselves), then forks one child per request line on its stdin and reports
each child's pid and exit code on its stdout. Each child runs bench.run.child in its own session, log, environment and
folder. The sweep's side, which starts this process and talks to it, is bench/launch/warm_client.py.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import signal
import sys
import traceback
from typing import Any, NoReturn

from bench.core.private_files import open_own_file
from bench.run.supervisor import exited_children

# Imported before the first fork. None of them initialises CUDA or starts a thread at import (checked by the
# tests). The wandb submodules are what its first `wandb.init` in a process imports (most of its start-up).
PRELOAD = ("torch", "lightning", "torchmetrics", "wandb", "lightning.pytorch.loggers.wandb", "wandb.apis.public",
           "wandb.sdk.launch", "wandb.sdk.lib.gitlib", "bench.run.child", "bench.run.session", "bench.run.environment",
           "lightning_modules", "datamodules")


def preload() -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # a missing optional module (wandb) is imported, or reported, by the run itself
    import datamodules
    import lightning_modules

    lightning_modules.names(), datamodules.names()  # the registries scan their packages once, here
    from datamodules import mnist5k

    mnist5k.digits_file()  # the default data, parsed once here rather than in every run (numpy only: no torch op
    # runs here, so no thread pool exists to be lost in the fork)


def send(fd: int, message: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())  # one short line: a single atomic pipe write


def serve() -> None:
    """The server's main loop: preload, then fork a run per request; exits when its stdin closes."""
    from bench.run.child import die_with_parent  # light: before the heavy imports

    die_with_parent()  # DNNBENCH_PARENT_PID names the sweep: a server whose sweep died while it started ends
    replies = os.dup(1)
    os.dup2(2, 1)  # what imported modules print must not reach the reply pipe
    preload()
    sig_r, sig_w = os.pipe()
    for fd in (sig_r, sig_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(sig_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector; children are reaped below
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sweep's to handle
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ)
    selector.register(sig_r, selectors.EVENT_READ)
    own_fds = (0, replies, sig_r, sig_w, selector.fileno())
    buffered = b""
    while True:
        for key, _ in selector.select():
            if key.fd == sig_r:
                while True:
                    try:
                        os.read(sig_r, 512)
                    except BlockingIOError:
                        break
                reap(replies)
                continue
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return  # the sweep closed the pipe or died: the runs die with this process
            *lines, buffered = (buffered + chunk).split(b"\n")
            for line in lines:
                fork_run(json.loads(line), replies, own_fds)


def reap(replies: int) -> None:
    for pid, code in exited_children():
        send(replies, {"exit": pid, "code": code})


def fork_run(request: dict[str, Any], replies: int, own_fds: tuple[int, ...]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    server_pid = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        send(replies, {"id": request["id"], "error": str(exc)})
        return
    if pid == 0:
        run_forked(request, own_fds, server_pid)
    send(replies, {"id": request["id"], "pid": pid})  # always before its exit: reaping happens in the loop


def run_forked(request: dict[str, Any], own_fds: tuple[int, ...], server_pid: int) -> NoReturn:
    """In the forked child: its own session and log, the sweep's environment and folder, then bench.run.child."""
    code = 1
    try:
        os.setsid()  # its own process group, so a time limit kills it and everything it started
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in own_fds:
            os.close(fd)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        log = open_own_file(request["log"], os.O_WRONLY | os.O_APPEND)  # made by the sweep; a link is refused
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"] | {"DNNBENCH_PARENT_PID": str(server_pid)})
        from bench.run import child  # it applies OMP_NUM_THREADS (read at import, long past here) in the run

        sys.argv = [sys.argv[0], "run", request["job"]]  # as a fresh run's (bench/launch/start.py)
        code = child.main([request["job"]])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:  # noqa: BLE001 - the exit code and the log say what happened
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # what a fresh interpreter would run at exit (e.g. W&B's flush)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
