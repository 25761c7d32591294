"""bench/run/supervisor.py: a run's process tree ends with the run: what it left behind (a daemon double-forked into
a new session included) is killed and its temporary folder removed when it exits, is killed, or its launcher dies."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.daemons import daemons_left

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]

RUN = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from bench.run.supervisor import run_tmp, supervise
    from tests.daemons import start_daemons
    assert supervise(Path(sys.argv[1]))
    Path(run_tmp(), "export").write_text("x")  # what an export leaves in the run's folder
    start_daemons(sys.argv[2])
    print("started", flush=True)
    if sys.argv[3] == "hang":
        time.sleep(120)
    sys.exit(int(sys.argv[3]) if sys.argv[3].isdigit() else 0)
""")


def start(tmp_path, tag, then):
    return subprocess.Popen([sys.executable, "-c", RUN, str(tmp_path / "tmp"), tag, then], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)


def tag() -> str:
    import random

    return str(random.randrange(10**8, 10**9))


def wait_gone(name: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := daemons_left(name)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


def test_a_run_that_exits_takes_its_daemons_and_folder_along_and_its_exit_code_is_the_runs(tmp_path):
    name = tag()
    run = start(tmp_path, name, "3")
    assert run.wait(timeout=30) == 3
    assert not wait_gone(name, 0.5)
    assert not (tmp_path / "tmp").exists()


def test_a_killed_run_and_a_dead_launcher_end_the_tree(tmp_path):
    from bench.run.supervisor import kill_tree

    name = tag()
    run = start(tmp_path, name, "hang")
    assert run.stdout.readline().strip() == "started"
    assert len(daemons_left(name)) == 2
    kill_tree(run.pid)  # what the launcher does at the time limit, before it kills the process group
    os.killpg(run.pid, signal.SIGKILL)
    assert run.wait(timeout=10) == -signal.SIGKILL
    assert not wait_gone(name, 0.5)

    name = tag()  # the supervisor's parent dies (a SIGKILLed sweep or warm server): the kernel's SIGTERM ends it all
    launcher = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.Popen(sys.argv[1:]); "
                                 "import time; time.sleep(120)", sys.executable, "-c", RUN, str(tmp_path / "tmp2"),
                                 name, "hang"], start_new_session=True)
    deadline = time.monotonic() + 30
    while len(daemons_left(name)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(daemons_left(name)) == 2
    launcher.kill()
    launcher.wait()
    assert not wait_gone(name, 5.0)
    deadline = time.monotonic() + 5
    while (tmp_path / "tmp2").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (tmp_path / "tmp2").exists()
