"""bench/launch/child_process.py: one run in its own process: one row whatever happens, the time limit, the user's
folder and environment in the child, reproduce, W&B's shared service."""

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.core.columns import SCHEMA_VERSION
from bench.launch import child_process as launch
from bench.launch import warm_client as warm_server
from bench.launch.child_process import run_child
from bench.results.io import flatten, read_rows
from tests.helpers import FAKE, ROOT, fake_config


@pytest.mark.integration
def test_ok_run_measures_speed_cost_and_environment(tmp_path):
    row = flatten(run_child(fake_config(), tmp_path))
    assert row["status"] == "ok", row["message"]
    for column in ("train_samples_per_s", "infer_samples_per_s", "latency_p50_ms", "peak_rss_mb", "params",
                   "flops_per_sample", "wall_s", "steps", "latency_samples"):
        assert float(row[column]) > 0, (column, row["message"])
    if row["latency_samples"] >= 100:  # a loaded machine may fit fewer calls in the smoke budget: then it says so
        assert float(row["latency_p95_ms"]) >= float(row["latency_p50_ms"])
    else:
        assert row["latency_p95_ms"] in (None, "") and "latency p90/p95/p99 empty" in row["message"]
    assert 0 <= float(row["data_wait_fraction"]) <= 1
    assert row["params"] == 64 * 3 + 3 and row["epoch_cap"] == 1  # the smoke profile's 1 epoch on a CPU
    assert row["flops_per_sample"] == 2 * 2 * 64 * 3  # the forward matmul and the weight gradient's
    assert row.get("metric_value") in (None, "")  # synthetic data: quality not applicable
    assert "no meaningful quality" in row["message"]
    assert row["torch_version"] and row["lightning_version"] and row["schema_version"] == SCHEMA_VERSION


@pytest.mark.integration
@pytest.mark.parametrize("mode, status, fragment", [
    ("nan", "diverged", "non-finite training loss"),
    ("oom", "oom", "out of memory"),
    ("crash", "error", "boom: injected crash"),
])
def test_failures_become_rows_with_a_status(tmp_path, mode, status, fragment):
    row = flatten(run_child(fake_config(mode), tmp_path))
    assert row["status"] == status
    assert fragment in row["message"]
    assert row["model"] == FAKE and row["reproduce"]


@pytest.mark.integration
def test_a_run_past_its_time_limit_is_killed_and_recorded(tmp_path):
    started = time.perf_counter()
    row = flatten(run_child(fake_config("sleep", time_limit_s=4), tmp_path))  # the fake sleeps 120 s in its first step
    assert row["status"] == "timeout"
    assert "4 s time limit" in row["message"]
    assert time.perf_counter() - started < 60


@pytest.mark.integration
def test_reproduce_reruns_the_same_config(tmp_path):
    row = flatten(run_child(fake_config(seed=3, batch_size=8), tmp_path / "first"))
    command = shlex.split(row["reproduce"])
    assert command[:2] == ["dnnbench", "run"]
    out = tmp_path / "again"
    result = subprocess.run([sys.executable, "-m", "bench", *command[1:], "--out", str(out), "--wandb", "disabled",
                             "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (again,) = read_rows(out / "results.csv")
    for column in ("model", "datamodule", "device", "num_devices", "precision", "compile", "batch_size", "profile",
                   "seed", "params", "flops_per_sample"):
        assert float(again[column]) == float(row[column]) if column in ("params", "flops_per_sample") \
            else str(again[column]) == str(row[column]), column


@pytest.mark.integration
def test_a_sweep_starts_w_and_b_once_and_each_run_logs_to_it(tmp_path, monkeypatch):
    import wandb

    wandb.teardown()  # a W&B an earlier test set up in this process would be reused, and name no service of ours
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


def dnnbench_command() -> list[str]:
    script = Path(sys.executable).parent / "dnnbench"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bench"]


@pytest.mark.integration
def test_runs_from_a_foreign_folder_with_a_relative_out_and_a_local_model(tmp_path):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    source = (ROOT / "tests" / "fake_models.py").read_text()
    (tmp_path / "mypkg" / "models.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(dnnbench_command() + ["run", "--models", "mypkg.models:FakeNet,mlp", "--profile",
                                                  "smoke", "--wandb", "disabled", "--no-progress", "--out", "./o"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_rows(tmp_path / "o" / "results.csv")
    assert [(r["model"], r["status"]) for r in rows] == [("mypkg.models:FakeNet", "ok"), ("mlp", "ok")], \
        [r["message"] for r in rows]


@pytest.mark.integration
def test_no_process_a_run_started_outlives_its_row_ended_or_timed_out(tmp_path):
    """A model that leaves daemons behind (one double-forked into its own session, whose parent is gone at once; one
    a plain child): none survives its row, whether the run ends by itself or is killed at its time limit."""
    import random

    from tests.daemons import daemons_left

    for mode, limit, status in (("daemons", 120, "ok"), ("daemons_then_hang", 3, "timeout")):
        tag = str(random.randrange(10**8, 10**9))
        row = flatten(run_child(fake_config(f"{mode}:{tag}", model="tests.crash_models:CrashNet",
                                            time_limit_s=limit), tmp_path / mode))
        assert row["status"] == status, row["message"]
        left = daemons_left(tag)
        for pid in left:  # not left running on the test machine whatever the outcome
            os.kill(pid, 9)
        assert not left, f"{mode}: {len(left)} daemon(s) outlived the run"
        assert not list((tmp_path / mode / "runs").glob(".job-*"))  # the run's own temporary folder went with it


@pytest.mark.integration
def test_a_batch_larger_than_the_data_is_not_claimed_by_an_ok_row(tmp_path):
    row = flatten(run_child(fake_config(batch_size=2_000_000_000), tmp_path))  # the fake's data: 64 samples
    assert row["status"] == "unsupported"
    assert "batch size 2,000,000,000 is more than the" in row["message"] and "--batch-sizes" in row["message"]


# As on Python 3.10, where PYTHONSAFEPATH does nothing: no process that the sweep starts gets it.
AS_ON_PYTHON_310 = """import subprocess

_start = subprocess.Popen.__init__


def start_without_safe_path(self, *args, env=None, **kwargs):
    _start(self, *args, env=None if env is None else {k: v for k, v in env.items() if k != "PYTHONSAFEPATH"}, **kwargs)


subprocess.Popen.__init__ = start_without_safe_path
"""


@pytest.mark.integration
def test_a_users_own_bench_and_datamodules_folders_do_not_shadow_ours(tmp_path):
    """A Lightning project's folder often has its own `bench/` and `datamodules/`: the sweep, its warm server and its
    runs (forked, and fresh with DNNBENCH_WARM=0) still import dnnbench's on every Python we allow (here without
    PYTHONSAFEPATH, which 3.10 lacks), while the user's own model module in that folder still imports."""
    project, site = tmp_path / "project", tmp_path / "as_on_310"
    for name in ("bench", "datamodules"):
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text("")
    (project / "usermodel.py").write_text("from tests.fake_models import FakeNet as Net  # noqa: F401\n")
    site.mkdir()
    (site / "sitecustomize.py").write_text(AS_ON_PYTHON_310)
    script = Path(sys.executable).parent / "dnnbench"  # the installed command; bench from ROOT (PYTHONPATH)
    for warm in ("1", "0"):  # forked from the warm server; fresh interpreters
        env = os.environ | {"PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "DNNBENCH_WARM": warm}
        result = subprocess.run([sys.executable, str(script), "run", "--models", "mlp,usermodel:Net", "--profile",
                                 "smoke", "--precisions", "32-true", "--wandb", "disabled", "--no-progress", "--out",
                                 f"./o{warm}"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
        csv = project / f"o{warm}" / "results.csv"
        rows = read_rows(csv) if csv.exists() else []
        assert [(r["model"], r["status"]) for r in rows] == [("mlp", "ok"), ("usermodel:Net", "ok")], (
            warm, result.stderr[-1500:], [r["message"] for r in rows])
