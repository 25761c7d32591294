"""The warm server (step: launching's fast path: one process that has imported the heavy modules forks each run).

This is the sweep's side: `WarmServer` starts the server process (bench/launch/warm_server.py: it imports torch,
lightning, torchmetrics, wandb and our packages once, never initialises CUDA, then forks one child per request) and
asks it for runs. A forked run starts in a fraction of a second instead of paying the imports (seconds) again.

Lifetimes: the server dies with the process that started it (PR_SET_PDEATHSIG, and EOF on its stdin), and each
run dies with the server (bench.run.child.die_with_parent), so nothing outlives a killed sweep. A crash, OOM-kill or
`os._exit` of a run is only the exit code of one child; a server that dies is started again for the next run.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 600.0  # the first reply waits for the imports; a server that takes longer is given up
REPLY_TIMEOUT_S = 5.0  # later a fork takes milliseconds: a server silent this long is hung (e.g. SIGSTOPped)
# The entry of the processes a sweep starts: never the working directory's `bench/` (bench/launch/start.py says how)
START_SCRIPT = str(Path(__file__).resolve().with_name("start.py"))
SERVE = [START_SCRIPT, "warm-server"]  # the server process's arguments to Python


class WarmServer:
    """The sweep's handle on one server process: requests out; pids and exit codes back through a reader thread."""

    def __init__(self):
        self.stderr = tempfile.TemporaryFile("w+")  # nameless: nothing is left behind, even by a killed sweep
        env = os.environ | {"PYTORCH_NVML_BASED_CUDA_CHECK": "1",  # a CUDA check must not init CUDA
                            "DNNBENCH_PARENT_PID": str(os.getpid())}
        self.process = subprocess.Popen([sys.executable, *SERVE],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        start_new_session=True, env=env)
        requests, replies = self.process.stdin, self.process.stdout
        assert requests is not None and replies is not None  # both are pipes (PIPE above)
        self.requests, self.reply_lines = requests, replies
        self.cond = threading.Condition()
        self.write_lock = threading.Lock()
        self.replies: dict[int, dict[str, Any]] = {}
        self.exits: dict[int, int] = {}
        self.alive, self.served = True, False
        self.forked: set[int] = set()  # pids of its runs not yet reported ended
        self.ids = itertools.count()
        threading.Thread(target=self.read_replies, daemon=True).start()

    def read_replies(self) -> None:
        try:
            for line in self.reply_lines:
                message = json.loads(line)
                with self.cond:
                    if "exit" in message:
                        self.exits[message["exit"]] = message["code"]
                        self.forked.discard(message["exit"])
                    else:
                        self.replies[message["id"]] = message
                    self.cond.notify_all()
        finally:  # the server is gone (or talks nonsense): nobody may wait on it any longer
            with self.cond:
                self.alive = False
                self.cond.notify_all()

    def running(self) -> bool:
        return self.alive and self.process.poll() is None

    def in_flight(self) -> bool:
        """Whether a run forked from it has not been reported ended (stopping it now would take that run along)."""
        with self.cond:
            return bool(self.forked) and self.running()

    def last_words(self) -> str:
        """The last line the server wrote to stderr (why it failed)."""
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().splitlines() if line.strip()]
        return lines[-1][:300] if lines else f"exit code {self.process.poll()}"

    def spawn(self, job: Path, log: Path, env: dict[str, str]) -> WarmChild | None:
        """Fork a run of `job`; None when the server is gone or cannot fork (the caller starts a fresh one)."""
        request_id = next(self.ids)
        line = json.dumps({"id": request_id, "job": str(job), "log": str(log), "cwd": os.getcwd(), "env": env})
        try:
            with self.write_lock:
                self.requests.write(line.encode() + b"\n")
                self.requests.flush()
        except OSError:
            return None
        with self.cond:
            answered = self.cond.wait_for(lambda: request_id in self.replies or not self.alive,
                                          REPLY_TIMEOUT_S if self.served else START_TIMEOUT_S)
            reply = self.replies.pop(request_id, {})
        if not answered:
            self.close()  # hung: stopped, so it cannot fork this run later behind our back
        if "pid" not in reply:
            return None
        self.served = True
        with self.cond:
            if reply["pid"] not in self.exits:
                self.forked.add(reply["pid"])
        return WarmChild(self, reply["pid"])

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """The child's exit code; None if the server died first (it took the child with it), or hung.

        Only the server can reap its child, so its word is waited for; but a child that has exited while the
        server stays silent (stopped, stuck) must not hold the sweep: after REPLY_TIMEOUT_S the server is
        stopped and the run's row comes from its result file, if it wrote one.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        exited_at = None
        with self.cond:
            while pid not in self.exits and self.alive:
                now = time.monotonic()
                if exited_at is None and not process_alive(pid):
                    exited_at = now
                late = deadline is not None and now >= deadline
                if exited_at is not None and (late or now - exited_at > REPLY_TIMEOUT_S):
                    break
                if late:
                    raise subprocess.TimeoutExpired(f"run {pid}", timeout or 0.0)
                self.cond.wait(min(1.0, deadline - now) if deadline is not None else 1.0)
            else:
                return self.exits.pop(pid, None)
        self.close()  # silent about a child that has ended: hung, and of no use to later runs
        return None

    def close(self) -> None:
        """Stop the server at once: it holds no state, and its running children die with it."""
        self.process.kill()
        self.process.wait()
        try:
            self.requests.close()  # stdout is left to the reader thread, which now sees its end
        except OSError:
            pass


def process_alive(pid: int) -> bool:
    """Whether `pid` still runs (an exited child that its parent has not reaped yet is a zombie: not running)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class WarmChild:
    """A forked run, waited on like a Popen: `.pid` and `.wait(timeout)` (None when its server died)."""

    def __init__(self, server: WarmServer, pid: int):
        self.server, self.pid = server, pid

    def wait(self, timeout: float | None = None) -> int | None:
        return self.server.exit_code(self.pid, timeout)


# One server per repeat round (a run's `repeat`, its lineage): every fork of one server shares that process's state
# (where its libraries and heap landed, what its imports touched), so runs forked from one server agree with each
# other more than separate processes do: two repeats of the history test's model, forked from one server, gave
# inference throughputs 0.3 % apart; sweeps of the same build, each its own server, 17 % apart, and fresh
# interpreters within one sweep as much. A config's repeats therefore never share a server, and their spread is
# the process-to-process spread that compare, history and --repeats auto judge by.
_servers: dict[int, WarmServer] = {}
_server_lock = threading.Lock()
_unavailable = not sys.platform.startswith("linux") or os.environ.get("DNNBENCH_WARM", "1") == "0"
IDLE_SERVERS_KEPT = 2  # beyond these, a server with no run in flight is stopped when another round's starts


def warm_server(lineage: int = 0) -> WarmServer | None:
    """The running server of repeat round `lineage`, started (again) when needed from the main thread; None where
    it is not available.

    Linux only (macOS forbids fork after some framework imports; Windows has no fork); DNNBENCH_WARM=0 turns it
    off. The server is started from the main thread only: its death signal follows the thread that started it.
    """
    global _unavailable
    with _server_lock:
        if _unavailable:
            return None
        server = _servers.get(lineage)
        if server is not None and server.running():
            return server
        if server is not None and not server.served:
            _unavailable = True  # it died before its first run (its imports failed): fresh from now on
            print(f"dnnbench: warning: warm server failed ({server.last_words()}); runs start in fresh "
                  "interpreters", file=sys.stderr)
            return None
        if threading.current_thread() is not threading.main_thread():
            return None
        idle = [key for key, other in _servers.items() if not other.in_flight()]
        for other in idle[:max(0, len(_servers) + 1 - IDLE_SERVERS_KEPT)]:
            _servers.pop(other).close()  # an earlier round's, idle: its memory back before this one's imports
        _servers[lineage] = WarmServer()
        return _servers[lineage]


def start_early(argv: list[str]) -> None:
    """`dnnbench run` on this machine: start the server before the command line's own imports, which then overlap
    the server's (a wrong guess costs an idle server, stopped at exit)."""
    executor = next((arg.partition("=")[2] for arg in argv if arg.startswith("--executor=")), "local")
    if "--executor" in argv[:-1]:
        executor = argv[argv.index("--executor") + 1]
    if argv[:1] == ["run"] and executor == "local" and not {"-h", "--help"} & set(argv):
        warm_server()


def stop_warm_server() -> None:
    with _server_lock:
        for server in _servers.values():
            server.close()
        _servers.clear()


atexit.register(stop_warm_server)
