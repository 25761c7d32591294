"""Launching: the warm server's isolation and restarts, --parallel slots and pins, and no child outliving its sweep."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.core import progress
from bench.core.config import RunConfig
from bench.launch import child_process as launch
from bench.launch import console as console_module
from bench.launch import warm_client as warm_server
from bench.launch.child_process import run_child
from bench.launch.console import Console
from bench.launch.local_executor import Slot, Slots, machine_slots, split_cores
from bench.launch.sweep import RunQueue
from bench.results.io import read_rows
from tests.helpers import FAKE, ROOT, fake_config

CRASH = "tests.crash_models:CrashNet"


def server_pid() -> int:
    return warm_server._server.process.pid


@pytest.mark.parametrize("mode, fragment", [
    ("segfault", "killed by SIGSEGV"),
    ("exit", "exited with code 3"),
    ("sigkill", "killed by SIGKILL (the kernel's out-of-memory killer"),
])
def test_the_warm_server_survives_a_run_that_dies(tmp_path, mode, fragment):
    first = run_child(fake_config(), tmp_path)  # starts (or reuses) the server
    assert first["status"] == "ok", first["message"]
    before = server_pid()
    crashed = run_child(fake_config(mode, model=CRASH), tmp_path)
    assert crashed["status"] == "error" and fragment in crashed["message"]
    assert crashed["model"] == CRASH and crashed["reproduce"] and crashed["devices_used"]
    after = run_child(fake_config(seed=1), tmp_path)
    assert after["status"] == "ok", after["message"]
    assert server_pid() == before  # the same server forked all three


def test_a_dead_server_is_started_again(tmp_path):
    assert run_child(fake_config(), tmp_path)["status"] == "ok"
    dead = server_pid()
    os.kill(dead, signal.SIGKILL)
    row = run_child(fake_config(seed=1), tmp_path)
    assert row["status"] == "ok", row["message"]
    assert server_pid() != dead


def test_runs_start_in_a_fresh_interpreter_where_forking_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setattr(warm_server, "_unavailable", True)
    monkeypatch.setattr(warm_server, "_server", None)
    row = run_child(fake_config(), tmp_path)
    assert row["status"] == "ok", row["message"]
    assert warm_server._server is None


def test_a_server_that_cannot_start_is_reported_once_and_runs_start_fresh(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(warm_server, "SERVE", "import sys; sys.exit('broken imports')")
    monkeypatch.setattr(warm_server, "_server", None)
    monkeypatch.setattr(warm_server, "_unavailable", False)
    rows = [run_child(fake_config(seed=seed), tmp_path) for seed in (0, 1)]
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


def test_parallel_2_on_cpu_gives_the_rows_of_a_serial_sweep_on_disjoint_cores(tmp_path):
    common = ["run", "--models", FAKE, "--batch-sizes", "8,16", "--repeats", "2", "--profile", "smoke",
              "--wandb", "disabled", "--no-progress"]
    assert main(common + ["--out", str(tmp_path / "serial")]) == 0
    assert main(common + ["--out", str(tmp_path / "parallel"), "--parallel", "2"]) == 0
    serial, parallel = (read_rows(tmp_path / name / "results.csv") for name in ("serial", "parallel"))

    def outcome(rows):
        return sorted((r["batch_size"], r["repeat"], r["seed"], r["status"], r["params"]) for r in rows)

    assert outcome(parallel) == outcome(serial) and len(serial) == 4
    core_sets = {f"cpu:{launch.core_ranges(list(s))}" for s in split_cores(sorted(os.sched_getaffinity(0)), 2)}
    assert {r["devices_used"] for r in parallel} <= core_sets
    assert {r["devices_used"] for r in serial} == {f"cpu:{launch.core_ranges(sorted(os.sched_getaffinity(0)))}"}


def test_slots_give_each_gpu_run_its_own_gpus_and_cores(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,4,5,6")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    gpu_run = RunConfig(model="mlp", datamodule="mnist5k", device="cuda")
    slots = Slots(machine_slots(None, [gpu_run]), auto=True)  # auto: one slot per GPU
    assert [s.gpu for s in slots.all] == ["3", "4", "5", "6"]
    first = slots.claim(gpu_run)
    assert Slots.pin(gpu_run, first).env() == {"CUDA_VISIBLE_DEVICES": "3", "DNNBENCH_CPUS": "0,1"}
    assert slots.claim(RunConfig(model="mlp", datamodule="mnist5k", device="cuda", num_devices=4)) is None
    assert slots.claim(RunConfig(model="mlp", datamodule="mnist5k", device="cpu")) is None  # alone, with all cores
    slots.release(first)
    ddp = RunConfig(model="mlp", datamodule="mnist5k", device="cuda", num_devices=4)
    assert Slots.pin(ddp, slots.claim(ddp)).gpus == ("3", "4", "5", "6")


def test_cpu_runs_leave_gpu_slots_free_and_see_no_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    cpu_run, gpu_run = (RunConfig(model="mlp", datamodule="mnist5k", device=d) for d in ("cpu", "cuda"))
    slots = Slots(machine_slots(2, [cpu_run, gpu_run]), auto=False)
    assert slots.all == [Slot((0, 1), "0"), Slot((2, 3), None)]
    assert Slots.pin(cpu_run, slots.claim(cpu_run)) == launch.Pin(gpus=(), cpus=(2, 3))
    assert Slots.pin(gpu_run, slots.claim(gpu_run)) == launch.Pin(gpus=("0",), cpus=(0, 1))
    assert machine_slots(1, [gpu_run]) == [Slot(None, None)]  # serial: nothing narrowed, as before


def test_a_precision_waits_for_its_32_true_run_so_drift_is_filled():
    base = RunConfig(model="mlp", datamodule="mnist5k")
    other = RunConfig(model="mlp", datamodule="mnist5k", precision="bf16-mixed")
    unrelated = RunConfig(model="cnn", datamodule="mnist5k", precision="bf16-mixed")
    queue = RunQueue([base, other, unrelated])
    assert queue.next_ready() == base
    queue.start(base)
    assert queue.next_ready() == unrelated  # `other` waits while its baseline runs
    queue.start(unrelated)
    assert queue.next_ready() is None
    queue.finish(base)
    assert queue.next_ready() == other


# ---------------------------------------------------------------------------------------- a child dies with its sweep
def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def start_sleeping_sweep(out: Path, env: dict):
    """A sweep whose run sleeps in training; returns it and its run's pid once training started."""
    args = [sys.executable, "-m", "bench", "run", "--models", FAKE, "--model-arg", "mode=sleep", "--profile",
            "smoke", "--wandb", "disabled", "--no-progress", "--out", str(out)]
    sweep = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 240
    while time.time() < deadline:
        found = list((out / "runs").glob("*.progress")) if (out / "runs").exists() else []
        reported = json.loads(found[0].read_text()) if found else {}
        if reported.get("stage") == "fit":
            return sweep, reported["pid"]
        time.sleep(0.2)
    sweep.kill()
    raise AssertionError("the run never started training")


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
@pytest.mark.parametrize("signum, warm", [(signal.SIGKILL, True), (signal.SIGKILL, False), (signal.SIGTERM, True)])
def test_no_child_outlives_a_killed_sweep(tmp_path, signum, warm):
    sweep, child = start_sleeping_sweep(tmp_path / "out", os.environ | {"DNNBENCH_WARM": "1" if warm else "0"})
    parent = int(Path(f"/proc/{child}/stat").read_text().split(")")[-1].split()[2])  # the server, or the sweep
    os.kill(sweep.pid, signum)
    sweep.communicate(timeout=30)
    killed_at = time.time()
    while time.time() - killed_at < 5 and (alive(child) or alive(parent)):
        time.sleep(0.1)
    assert not alive(child) and not alive(parent)
    if signum == signal.SIGTERM:
        assert sweep.returncode == 128 + signal.SIGTERM


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
def test_ctrl_c_ends_the_sweep_with_one_line_and_exit_130(tmp_path):
    sweep, child = start_sleeping_sweep(tmp_path / "out", dict(os.environ))
    sweep.send_signal(signal.SIGINT)
    _, err = sweep.communicate(timeout=30)
    assert sweep.returncode == 130
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("dnnbench: stopped by SIGINT")
    deadline = time.time() + 5
    while time.time() < deadline and alive(child):
        time.sleep(0.1)
    assert not alive(child)


def test_a_sweep_starts_w_and_b_once_and_each_run_logs_to_it(tmp_path, monkeypatch):
    import wandb

    monkeypatch.delenv("WANDB_SERVICE", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    try:
        assert main(["run", "--models", FAKE, "--repeats", "2", "--profile", "smoke", "--wandb", "offline",
                     "--no-progress", "--out", str(tmp_path)]) == 0
        assert os.environ.get("WANDB_SERVICE")  # the service the runs connected to, started by the sweep
    finally:
        wandb.teardown()
    assert [r["status"] for r in read_rows(tmp_path / "results.csv")] == ["ok", "ok"]
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 3  # two runs and the sweep's summary


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_moves_in_place_on_a_terminal_and_as_plain_lines_in_a_log(tmp_path, monkeypatch):
    config = fake_config()
    path = progress.path_for(tmp_path, config.run_id)
    path.parent.mkdir(parents=True)
    progress.write(path, pid=1, stage="fit", epoch=1, max_epochs=3, step=40)
    monkeypatch.setattr(console_module, "PLAIN_EVERY_S", 0.0)
    log, terminal = io.StringIO(), Terminal()
    for stream in (log, terminal):
        console = Console(total=2, stream=stream)
        console.tick([(config, "cpu:0", path)])
        progress.write(path, pid=1, stage="fit", epoch=2, max_epochs=3, step=80)
        console.tick([(config, "cpu:0", path)])
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines() == [
        f"dnnbench: start {config.label()} [cpu:0]",
        f"dnnbench [0/2] epoch 2/3 step 40: {config.label()} [cpu:0]",
        f"dnnbench [0/2] epoch 3/3 step 80: {config.label()} [cpu:0]"]
    assert terminal.getvalue().count("\r\x1b[K") == 2 and "epoch 3/3 step 80" in terminal.getvalue()


@pytest.mark.gpu
def test_a_forked_run_initialises_cuda_itself(tmp_path):
    row = run_child(fake_config(device="cuda"), tmp_path)
    assert row["status"] == "ok", row["message"]
    assert row["devices_used"].startswith("cuda:")


@pytest.mark.gpu
def test_parallel_auto_gives_each_gpu_run_its_own_gpu(tmp_path):
    import torch

    assert main(["run", "--models", FAKE, "--devices", "cuda", "--repeats", str(2 * torch.cuda.device_count()),
                 "--parallel", "auto", "--profile", "smoke", "--wandb", "disabled", "--no-progress",
                 "--out", str(tmp_path)]) == 0
    rows = read_rows(tmp_path / "results.csv")
    assert all(r["status"] == "ok" for r in rows), [r["message"] for r in rows]
    assert {r["devices_used"] for r in rows} == {f"cuda:{i}" for i in range(torch.cuda.device_count())} \
        or torch.cuda.device_count() == 1


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
        row = run_child(fake_config(model="mypkg:Net"), tmp_path / "sweep")  # forked; fresh children import
        # through the same finder (bench/__init__.py)
    finally:
        warm_server.stop_warm_server()
    assert row["status"] == "ok", row["message"]


def test_a_time_limit_past_what_threading_takes_is_no_limit():
    """--time-limit 1e10 reached threading's Condition.wait (past TIMEOUT_MAX: OverflowError) while waiting on a
    warm server's word; here a stand-in server reports the exit after 0.2 s."""
    import threading

    server = object.__new__(warm_server.WarmServer)  # no process: only what waiting on a child reads
    server.cond, server.exits, server.alive = threading.Condition(), {}, True

    def report_exit():
        with server.cond:
            server.exits[os.getpid()] = 0
            server.cond.notify_all()

    threading.Timer(0.2, report_exit).start()
    assert launch.wait_or_kill(warm_server.WarmChild(server, os.getpid()), 1e10) == (0, False)


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
def test_a_stopped_warm_server_does_not_hold_the_run_past_its_limit(tmp_path):
    """SIGSTOP the server once it forked a run: the run ends, the server never says so; its row still comes."""
    import threading

    assert run_child(fake_config(), tmp_path)["status"] == "ok"  # a warm server that has served
    server = server_pid()
    config = fake_config(seed=1, time_limit_s=20)
    rows, started = [], time.monotonic()
    runner = threading.Thread(target=lambda: rows.append(run_child(config, tmp_path)), daemon=True)
    runner.start()
    progress_file = progress.path_for(tmp_path.resolve(), config.run_id)
    while not progress_file.exists() and time.monotonic() - started < 60:
        time.sleep(0.05)
    os.kill(server, signal.SIGSTOP)
    try:
        runner.join(timeout=config.time_limit_s + 15)
    finally:
        with contextlib.suppress(ProcessLookupError):  # closed (killed) as hung: gone
            os.kill(server, signal.SIGCONT)
    assert rows, "no row within the time limit"
    assert time.monotonic() - started < config.time_limit_s + 10 + 5  # the limit, the bar's 10 s, the run's start
    assert rows[0]["status"] == "ok", rows[0]["message"]
    assert run_child(fake_config(seed=2), tmp_path)["status"] == "ok"  # a new server for the next run


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_sweep_stopped_while_starting_takes_its_warm_server_along(tmp_path, signum):
    """SIGTERM or SIGKILL while the sweep still imports and plans: one line and exit 143 for SIGTERM, and the warm
    server (started first, itself still importing) ends with it rather than seconds later."""
    import psutil

    args = [sys.executable, "-m", "bench", "run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled",
            "--no-progress", "--out", str(tmp_path / "out")]
    sweep = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (children := psutil.Process(sweep.pid).children()) and time.time() < deadline:
        time.sleep(0.02)
    assert children, "the sweep started no warm server"
    time.sleep(0.3)  # the server is still importing
    sweep.send_signal(signum)
    _, err = sweep.communicate(timeout=30)
    killed_at = time.time()
    while time.time() - killed_at < 2 and alive(children[0].pid):
        time.sleep(0.05)
    assert not alive(children[0].pid)
    if signum == signal.SIGTERM:
        assert sweep.returncode == 143 and err.strip().splitlines() == ["dnnbench: stopped by SIGTERM"], err


def test_a_ctrl_c_while_exiting_is_quiet(tmp_path):
    """A second Ctrl-C that lands in the exit handlers (stopping the warm server, W&B's flush) ends the process
    at once, without "Exception ignored in atexit callback"."""
    code = ("import atexit, os, signal, sys, time; from bench.cli import main; "
            "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(5))); "
            f"sys.argv = ['dnnbench', 'report', {str(tmp_path / 'missing.csv')!r}]; sys.exit(main())")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 130 and "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, \
        done.stderr


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
