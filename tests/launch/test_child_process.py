"""The runner: one row per run whatever happens, statuses, resume after a kill, schema, reproduce, bad input."""

import csv
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from bench.cli import main
from bench.core.columns import COLUMNS, SCHEMA_VERSION, markdown_docs
from bench.core.config import RunConfig
from bench.launch.child_process import run_child
from bench.results.io import read_rows
from bench.run.child import run
from tests.helpers import FAKE, ROOT, fake_config


def test_ok_run_measures_speed_cost_and_environment(tmp_path):
    row = run_child(fake_config(), tmp_path)
    assert row["status"] == "ok", row["message"]
    for column in ("train_samples_per_s", "infer_samples_per_s", "latency_p50_ms", "peak_rss_mb", "params",
                   "flops_per_sample", "wall_s", "steps", "latency_samples"):
        assert float(row[column]) > 0, (column, row["message"])
    if row["latency_samples"] >= 100:  # a loaded machine may fit fewer calls in the smoke budget: then it says so
        assert float(row["latency_p95_ms"]) >= float(row["latency_p50_ms"])
    else:
        assert row["latency_p95_ms"] in (None, "") and "latency p90/p95/p99 empty" in row["message"]
    assert 0 <= float(row["data_wait_fraction"]) <= 1
    assert row["params"] == 64 * 3 + 3
    assert row["flops_per_sample"] == 2 * 2 * 64 * 3  # the forward matmul and the weight gradient's
    assert row.get("metric_value") in (None, "")  # synthetic data: quality not applicable
    assert "no meaningful quality" in row["message"]
    assert row["torch_version"] and row["lightning_version"] and row["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize("mode, status, fragment", [
    ("nan", "diverged", "non-finite training loss"),
    ("oom", "oom", "out of memory"),
    ("crash", "error", "boom: injected crash"),
])
def test_failures_become_rows_with_a_status(tmp_path, mode, status, fragment):
    row = run_child(fake_config(mode), tmp_path)
    assert row["status"] == status
    assert fragment in row["message"]
    assert row["model"] == FAKE and row["reproduce"]


def test_a_run_past_its_time_limit_is_killed_and_recorded(tmp_path):
    started = time.perf_counter()
    row = run_child(fake_config("sleep", time_limit_s=15), tmp_path)
    assert row["status"] == "timeout"
    assert "15 s time limit" in row["message"]
    assert time.perf_counter() - started < 60


def test_missing_device_is_unavailable_and_cpu_float16_unsupported(tmp_path):
    import torch

    if not torch.cuda.is_available():
        row = run(fake_config(device="cuda"), tmp_path)
        assert row["status"] == "unavailable" and "no CUDA device" in row["message"]
    row = run(fake_config(precision="16-mixed"), tmp_path)
    assert row["status"] == "unsupported" and "16-mixed is not supported on CPU" in row["message"]


def sweep_command(out, *extra):
    return [sys.executable, "-m", "bench", "run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled",
            "--no-progress", "--out", str(out), *extra]


def test_killed_sweep_resumes_without_lost_or_duplicated_rows(tmp_path):
    out = tmp_path / "sweep"
    args = sweep_command(out, "--repeats", "4")
    sweep = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(read_rows(out / "results.csv")) < 2:
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGKILL)  # mid-sweep, no chance to clean up
    sweep.wait()
    kept = read_rows(out / "results.csv")
    assert 2 <= len(kept) < 4
    refused = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = subprocess.run(args + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rows = read_rows(out / "results.csv")
    assert sorted(int(r["repeat"]) for r in rows) == [0, 1, 2, 3]
    assert rows[: len(kept)] == kept  # finished rows untouched
    with open(out / "results.csv", newline="") as f:
        assert next(csv.reader(f)) == COLUMNS


def test_a_sweep_refuses_to_append_to_a_csv_with_other_columns(tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    old_columns = [c for c in COLUMNS if c != "other_metrics"]  # a schema-version-1 file
    (out / "results.csv").write_text(",".join(old_columns) + "\n" + ",".join("1" for _ in old_columns) + "\n")
    code = main(["run", "--models", FAKE, "--data", "synthetic", "--profile", "smoke", "--out", str(out),
                 "--resume", "--wandb", "disabled", "--no-progress"])
    assert code == 2 and "other columns" in capsys.readouterr().err
    assert (out / "results.csv").read_text().count("\n") == 2  # untouched


def test_other_test_metrics_go_beside_the_main_one(tmp_path):
    row = run(RunConfig(model="autoencoder", datamodule="mnist5k", profile="smoke", batch_size=32,
                        time_limit_s=120), tmp_path)
    assert row["status"] == "ok", row["message"]
    others = row["other_metrics"]
    assert {"psnr", "ssim"} <= set(others) and "mse" not in others  # mse is metric_value itself
    assert others["psnr"]["value"] > 0 and 0 < others["ssim"]["value"] <= 1
    assert others["psnr"]["better"] == "max"  # declared by the model, so compare can gate it


def test_every_column_is_documented():
    text = (ROOT / "results" / "README.md").read_text()
    documented = set(re.findall(r"`([a-z0-9_]+)`", text))
    assert not [c for c in COLUMNS if c not in documented]
    generated = text.split("tests/test_runner.py checks it -->\n")[1].split("<!-- end of columns -->")[0]
    assert generated == markdown_docs(), "results/README.md is stale: regenerate it with python -m bench.core.columns"


def test_reproduce_reruns_the_same_config(tmp_path):
    row = run_child(fake_config(seed=3, batch_size=8), tmp_path / "first")
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


def test_unwritable_output_folder_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "--models", FAKE, "--out", str(blocker / "sub"), "--wandb", "disabled"]) == 2
    assert "not writable" in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_ddp_on_cpu_reports_throughput(tmp_path):
    out = tmp_path / "ddp"
    result = subprocess.run(sweep_command(out, "--devices", "cpu,cpu:2"), cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    rows = read_rows(out / "results.csv")
    assert [(r["num_devices"], r["strategy"], r["status"]) for r in rows] == [("1", "auto", "ok"),
                                                                               ("2", "ddp", "ok")]
    assert all(float(r["train_samples_per_s"]) > 0 for r in rows)
