"""bench/launch/warm_client.py and warm_server.py: the warm server's isolation, restarts and fallbacks, and what it
holds when it forks (no torch thread pool, no CUDA)."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.core import progress
from bench.launch import warm_client as warm_server
from bench.launch.child_process import run_child
from bench.results.io import flatten
from tests.helpers import ROOT, fake_config

pytestmark = pytest.mark.integration

CRASH = "tests.crash_models:CrashNet"


def server_pid(lineage: int = 0) -> int:
    return warm_server._servers[lineage].process.pid


@pytest.mark.parametrize("mode, fragment", [
    ("segfault", "killed by SIGSEGV"),
    ("exit", "exited with code 3"),
    ("sigkill", "killed by SIGKILL (the kernel's out-of-memory killer"),
])
def test_the_warm_server_survives_a_run_that_dies(tmp_path, mode, fragment):
    first = flatten(run_child(fake_config(), tmp_path))  # starts (or reuses) the server
    assert first["status"] == "ok", first["message"]
    before = server_pid()
    crashed = flatten(run_child(fake_config(mode, model=CRASH), tmp_path))
    assert crashed["status"] == "error" and fragment in crashed["message"]
    assert crashed["model"] == CRASH and crashed["reproduce"] and crashed["devices_used"]
    after = flatten(run_child(fake_config(seed=1), tmp_path))
    assert after["status"] == "ok", after["message"]
    assert server_pid() == before  # the same server forked all three


def test_a_dead_server_is_started_again(tmp_path):
    assert flatten(run_child(fake_config(), tmp_path))["status"] == "ok"
    dead = server_pid()
    os.kill(dead, signal.SIGKILL)
    row = flatten(run_child(fake_config(seed=1), tmp_path))
    assert row["status"] == "ok", row["message"]
    assert server_pid() != dead


def test_each_repeat_round_forks_from_its_own_server_and_idle_earlier_ones_stop(tmp_path):
    """Forks of one server share its state and agree more than separate processes: a config's repeats never share
    one. A round's runs share their round's server; at most two idle servers are kept."""
    warm_server.stop_warm_server()
    assert flatten(run_child(fake_config(), tmp_path))["status"] == "ok"
    first = server_pid(0)
    rows = [flatten(run_child(fake_config(seed=seed, repeat=repeat), tmp_path)) for seed, repeat in ((1, 1), (2, 0))]
    assert [row["status"] for row in rows] == ["ok"] * 2, rows
    second = server_pid(1)
    assert first != second and server_pid(0) == first and set(warm_server._servers) == {0, 1}
    assert flatten(run_child(fake_config(seed=3, repeat=2), tmp_path))["status"] == "ok"
    assert set(warm_server._servers) == {1, 2}  # round 0's server, idle and the oldest, was stopped
    assert server_pid(1) == second
    warm_server.stop_warm_server()


def test_runs_start_in_a_fresh_interpreter_where_forking_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setattr(warm_server, "_unavailable", True)
    monkeypatch.setattr(warm_server, "_servers", {})
    row = flatten(run_child(fake_config(), tmp_path))
    assert row["status"] == "ok", row["message"]
    assert warm_server._servers == {}


def test_a_server_that_cannot_start_is_reported_once_and_runs_start_fresh(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(warm_server, "SERVE", ["-c", "import sys; sys.exit('broken imports')"])
    monkeypatch.setattr(warm_server, "_servers", {})
    monkeypatch.setattr(warm_server, "_unavailable", False)
    rows = [flatten(run_child(fake_config(seed=seed), tmp_path)) for seed in (0, 1)]
    assert [row["status"] for row in rows] == ["ok", "ok"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warm server" in line]
    assert len(warnings) == 1 and "broken imports" in warnings[0] and "fresh interpreters" in warnings[0]
    assert warm_server._unavailable


def test_the_server_preloads_without_threads_or_cuda():
    code = ("import threading, torch; from bench.launch.warm_server import preload; preload(); "
            "import lightning, wandb, lightning_modules; "
            "print(threading.active_count(), torch.cuda.is_initialized())")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.stdout.split() == ["1", "False"], result.stderr[-2000:]  # forking is safe after this


@pytest.mark.gpu
def test_a_forked_run_initialises_cuda_itself(tmp_path):
    row = flatten(run_child(fake_config(device="cuda"), tmp_path))
    assert row["status"] == "ok", row["message"]
    assert row["devices_used"].startswith("cuda:")


# ------------------------------------------------------------------------- the user's folder (issue 23)
def test_a_users_datamodules_folder_does_not_shadow_ours_and_their_own_module_resolves(tmp_path, monkeypatch):
    """Lightning projects often have `datamodules/` and `lightning_modules/` folders; runs work in the user's folder
    with it on the import path, where those names must still mean dnnbench's packages."""
    for name in ("datamodules", "lightning_modules"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('the user folder was imported')\n")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("from tests.fake_models import FakeNet as Net  # noqa: F401\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # as `dnnbench run` puts the working directory first
    warm_server.stop_warm_server()  # the server starts in this folder, as a sweep's does
    try:
        row = flatten(run_child(fake_config(model="mypkg:Net"), tmp_path / "sweep"))  # forked; fresh children import
        # through the same finder (bench/__init__.py)
    finally:
        warm_server.stop_warm_server()
    assert row["status"] == "ok", row["message"]


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
def test_a_stopped_warm_server_does_not_hold_the_run_past_its_limit(tmp_path, monkeypatch):
    """SIGSTOP the server once it forked a run: the run ends, the server never says so; its row still comes."""
    import threading

    assert flatten(run_child(fake_config(), tmp_path))["status"] == "ok"  # a warm server that has served
    server = server_pid()
    config = fake_config(seed=1, time_limit_s=20)
    rows, started = [], time.monotonic()
    runner = threading.Thread(target=lambda: rows.append(run_child(config, tmp_path)), daemon=True)
    runner.start()
    progress_file = progress.path_for(tmp_path.resolve(), config.run_id)
    while not progress_file.exists() and time.monotonic() - started < 60:
        time.sleep(0.05)
    # The fork was answered: from here the bar is how long an ended run's server may stay silent (5 s by default)
    monkeypatch.setattr(warm_server, "REPLY_TIMEOUT_S", 0.5)
    os.kill(server, signal.SIGSTOP)
    try:
        runner.join(timeout=config.time_limit_s + 15)
    finally:
        with contextlib.suppress(ProcessLookupError):  # closed (killed) as hung: gone
            os.kill(server, signal.SIGCONT)
    assert rows, "no row within the time limit"
    assert time.monotonic() - started < config.time_limit_s + 10 + 5  # the limit, the bar's 10 s, the run's start
    assert rows[0].status == "ok", rows[0].message
    assert flatten(run_child(fake_config(seed=2), tmp_path))["status"] == "ok"  # a new server for the next run


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def cuda_driver_traces(pid: int) -> tuple[set[str], list[str]]:
    """(libraries mapped into the process, its open /dev/nvidia* files): a raw driver initialisation (cuInit,
    NVML, a driver-based device count) maps libcuda.so or opens the device files, whatever torch.cuda says."""
    libraries = {line.split()[-1].rsplit("/", 1)[-1] for line in open(f"/proc/{pid}/maps") if "/" in line}
    files = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            files.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return libraries, [f for f in files if f.startswith("/dev/nvidia")]


def test_thread_counting_sees_torchs_cpu_pool_start():
    """The control for the test below: one parallel torch op starts the pool's threads (2 asked for)."""
    code = "import sys, torch; torch.randn(1 << 20).add_(1); print(flush=True); sys.stdin.read()"
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        process.stdout.readline()
        assert threads_of(process.pid) > 1
    finally:
        process.kill()
        process.wait()


def test_the_warm_server_forks_without_torchs_thread_pool_or_the_cuda_driver(tmp_path, monkeypatch):
    # numpy's and scipy's BLAS pools held to one thread (they shut down at fork anyway) and torch's asked for two:
    # any thread besides the main one in the server would be torch's CPU pool, started before the first fork
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    server = warm_server.WarmServer()
    try:
        child = server.spawn(tmp_path / "no-job.json", tmp_path / "run.log", dict(os.environ))  # after preload
        assert child is not None and child.wait(300) == 1  # the run itself fails: there is no job file
        threads = threads_of(server.process.pid)
        libraries, device_files = cuda_driver_traces(server.process.pid)
    finally:
        server.close()
    assert threads == 1
    assert any(name.startswith("libtorch_cpu") for name in libraries)  # the maps were read: torch is there
    assert not [name for name in libraries if name.startswith("libcuda.so")] and not device_files
