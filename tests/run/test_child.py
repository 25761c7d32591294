"""bench/run/child.py: one run in this process: its statuses (host out of memory is `oom`, as on a GPU), and no
measurement costs its row."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.core.columns import Status
from bench.core.config import RunConfig
from bench.results.io import flatten
from bench.run.child import failure_status, run
from bench.run.measure import cost, inference, memory
from tests.helpers import fake_config


@pytest.mark.parametrize("exc", [
    RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 4000000000000 bytes. "
                 "Error code 12 (Cannot allocate memory)"),
    MemoryError(),
])
def test_host_out_of_memory_is_an_oom_row(exc):
    assert failure_status(exc) == Status.OOM


def test_other_errors_stay_errors():
    assert failure_status(RuntimeError("boom")) == Status.ERROR


def test_failed_measurements_leave_an_ok_row_with_empty_cells_and_notes(tmp_path, monkeypatch):
    def formula_fails(self, func_packet, out, args, kwargs):
        raise ValueError("no formula for this shape")

    def fails(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(FlopCounterMode, "_count_flops", formula_fails)  # inside the counted training step
    monkeypatch.setattr(inference, "inference_timing", fails)
    monkeypatch.setattr(memory, "gpu_peak", fails)
    row = flatten(run(fake_config(), tmp_path))
    assert row["status"] == "ok", row["message"]
    assert row["train_samples_per_s"] > 0 and row["metric_name"] == "acc"  # the training and its speed stand
    for column in ("flops_per_sample", "achieved_tflops", "mfu", "infer_flops_per_sample", "latency_p50_ms",
                   "infer_samples_per_s", "peak_gpu_mem_allocated_mb"):
        assert row.get(column) is None, column
    for note in ("FLOP count failed", "no formula for this shape", "inference timing failed: injected",
                 "GPU memory reading failed: injected"):
        assert note in row["message"], note


def test_a_counter_that_cannot_start_costs_only_its_cells(tmp_path, monkeypatch):
    def cannot_start(self):
        raise RuntimeError("counter unavailable")

    monkeypatch.setattr(cost.FlopCount, "start", cannot_start)
    row = flatten(run(fake_config(), tmp_path))
    assert row["status"] == "ok" and row.get("flops_per_sample") is None and row["infer_samples_per_s"] > 0
    assert "FLOP count failed: counter unavailable" in row["message"]


def test_missing_device_is_unavailable_and_cpu_float16_unsupported(tmp_path):

    if not torch.cuda.is_available():
        row = flatten(run(fake_config(device="cuda"), tmp_path))
        assert row["status"] == "unavailable" and "no CUDA device" in row["message"]
    row = flatten(run(fake_config(precision="16-mixed"), tmp_path))
    assert row["status"] == "unsupported" and "16-mixed is not supported on CPU" in row["message"]


def test_other_test_metrics_go_beside_the_main_one(tmp_path):
    row = flatten(run(RunConfig(model="autoencoder", datamodule="mnist5k", profile="smoke", batch_size=32,
                        time_limit_s=120), tmp_path))
    assert row["status"] == "ok", row["message"]
    others = row["other_metrics"]
    assert {"psnr", "ssim"} <= set(others) and "mse" not in others  # mse is metric_value itself
    assert others["psnr"]["value"] > 0 and 0 < others["ssim"]["value"] <= 1
    assert others["psnr"]["better"] == "max"  # declared by the model, so compare can gate it
