"""bench/launch/local_executor.py: --parallel slots, their GPUs and cores, and the rows of a parallel sweep."""

import os

import pytest

from bench.cli import main
from bench.core.config import RunConfig
from bench.launch import child_process as launch
from bench.launch.local_executor import Slot, Slots, machine_slots, split_cores
from bench.results.io import read_rows
from tests.helpers import FAKE


@pytest.mark.integration
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


@pytest.mark.integration
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
