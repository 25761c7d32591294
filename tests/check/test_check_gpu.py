"""`dnnbench check --devices cuda` on a fake NVML spec'd from the installed nvidia-ml-py (tests/fake_nvml.py) and
torch.cuda patched to say a GPU is there: its GPU lines, without a traceback, on a well-set GPU and on GPUs that
refuse a query; and every nvml* name the project calls exists in the installed library."""

from __future__ import annotations

import ast
import functools
import re
import sys
from pathlib import Path
from unittest import mock

import pynvml
import pytest
import torch

from bench.check import command as check
from bench.check import machine
from bench.check.machine import OK, WARN
from bench.run.measure import gpu_processes, nvml_calls
from tests.fake_nvml import fake_nvml, processes, refuse

ROOT = Path(__file__).resolve().parents[2]
NVML_NAME = re.compile(r"\b(nvml[A-Z]\w*|NVML_[A-Z0-9_]+|NVMLError\w*)\b")


def nvml_names_used() -> dict[str, str]:
    """Every nvml* / NVML_* / NVMLError* identifier in bench/ and benchmarks/ (attributes, names and the strings
    that name queries, e.g. the fallback lists), with the first file that uses it."""
    used: dict[str, str] = {}
    for path in sorted([*ROOT.glob("bench/**/*.py"), *ROOT.glob("benchmarks/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            text = (node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name)
                    else node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else "")
            for name in NVML_NAME.findall(text):
                used.setdefault(name, str(path.relative_to(ROOT)))
    return used


def test_every_nvml_name_the_project_uses_exists_in_nvidia_ml_py():
    used = nvml_names_used()
    assert {"nvmlInit", "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetComputeRunningProcesses"} <= set(used)
    missing = {name: path for name, path in used.items() if not hasattr(pynvml, name)}
    assert not missing, f"names nvidia-ml-py does not have: {missing}"


@pytest.fixture
def on_a_gpu(monkeypatch):
    """torch.cuda says one GPU is there; `install(nvml)` makes `import pynvml` give that fake; the busy-process
    sample is short."""
    for name, answer in (("is_available", True), ("device_count", 1), ("get_device_capability", (9, 0))):
        monkeypatch.setattr(torch.cuda, name, mock.create_autospec(getattr(torch.cuda, name), return_value=answer))
    monkeypatch.setattr(check, "machine_lines", functools.partial(machine.machine_lines, sample_s=0.05))

    def install(nvml):
        nvml.nvmlSystemGetDriverVersion.return_value = "570.86.15"
        monkeypatch.setitem(sys.modules, "pynvml", nvml)
        return nvml
    return install


def check_output(capsys) -> tuple[int, str]:
    code = check.main(check.argparse.Namespace(devices="cuda", probe_model=None, probe_repeats=3, no_probe=True))
    return code, capsys.readouterr().out


def test_check_devices_cuda_prints_every_gpu_line(on_a_gpu, capsys):
    on_a_gpu(fake_nvml(pids=(4242,)))
    code, out = check_output(capsys)
    gpu = [line for line in out.splitlines() if "GPU 0 (NVIDIA H100 80GB HBM3)" in line]
    for what in ("persistence", "clocks", "throttling", "power", "temperature", "ECC", "MIG", "other processes"):
        assert any(f" {what} " in line for line in gpu), out
    assert "SM 1980 of 1980 MHz" in out and "driver 570.86.15" in out
    assert any("other processes" in line and "4242" in line and line.startswith(WARN) for line in gpu), out
    assert code == 1 and [line.what for line in machine.all_gpu_lines() if line.unreliable] == [
        "GPU 0 (NVIDIA H100 80GB HBM3) other processes"]  # it shares the GPU: numbers unreliable


@pytest.mark.parametrize("refused, said", [
    ("nvmlDeviceGetTotalEnergyConsumption", None),  # no energy counter: the check does not need one
    ("nvmlDeviceGetComputeRunningProcesses_v3", "other processes"),  # no process query at all
    ("nvmlDeviceGetClockInfo", "clocks"),  # a driver that refuses clocks
])
def test_a_gpu_that_refuses_a_query_still_gets_its_lines(on_a_gpu, capsys, refused, said):
    nvml = on_a_gpu(fake_nvml())
    if refused.endswith("_v3"):  # every version of both process queries refuses
        for name in (*nvml_calls.COMPUTE_PROCESSES, *nvml_calls.GRAPHICS_PROCESSES):
            refuse(getattr(nvml, name))
    else:
        refuse(getattr(nvml, refused))
    code, out = check_output(capsys)
    assert "Traceback" not in out and code in (0, 1), out  # 1 where other work keeps this machine busy
    assert not any(line.unreliable for line in machine.all_gpu_lines())  # a refused query is no fault
    if said:
        [line] = [line for line in out.splitlines() if f" {said} " in line and "GPU 0" in line]
        assert line.startswith(OK) and "not readable here (Not Supported)" in line


def test_a_driver_older_than_the_library_falls_back_to_older_names(on_a_gpu, capsys):
    """A 12.x/13.x library on a driver without the _v3 symbols, and a pre-r535 driver without clock-event reasons:
    the older names answer."""
    nvml = on_a_gpu(fake_nvml(mask=0x40))
    for name in ("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v3",
                 "nvmlDeviceGetCurrentClocksEventReasons"):
        refuse(getattr(nvml, name), pynvml.NVMLError_FunctionNotFound)
    nvml.nvmlDeviceGetComputeRunningProcesses_v2.side_effect = lambda handle: processes([777])
    nvml.nvmlDeviceGetCurrentClocksThrottleReasons.return_value = 0x40
    _, out = check_output(capsys)
    assert any("other processes" in line and "777" in line for line in out.splitlines()), out
    assert any("throttling" in line and "hw_thermal" in line for line in out.splitlines()), out


def test_an_unexpected_error_in_one_line_is_a_line_saying_so(on_a_gpu, capsys):
    nvml = on_a_gpu(fake_nvml())
    nvml.nvmlDeviceGetTemperature.side_effect = AttributeError("module 'pynvml' has no attribute 'x'")
    _, out = check_output(capsys)
    [line] = [line for line in out.splitlines() if " temperature " in line]
    assert line.startswith(WARN) and "the check failed: AttributeError" in line, out
    assert "MIG" in out and "other processes" in out  # the lines after it are there
    assert not any(line.unreliable for line in machine.all_gpu_lines())  # a failed query is no fact about the GPU


def test_an_old_library_without_versioned_names_still_lists_processes():
    """nvidia-ml-py 11.450 has only the unversioned names: the fake's spec is a module without the others."""
    old = mock.create_autospec(pynvml, spec_set=True)
    old.NVMLError_FunctionNotFound = pynvml.NVMLError_FunctionNotFound
    old.NVMLLibraryMismatchError = pynvml.NVMLLibraryMismatchError
    old.nvmlDeviceGetComputeRunningProcesses.return_value = processes([5])
    for name in ("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2"):
        refuse(getattr(old, name), pynvml.NVMLError_FunctionNotFound)
    assert [p.pid for p in nvml_calls.compute_processes(old, "handle0")] == [5]


def test_the_runs_foreign_gpu_count_sees_other_processes(monkeypatch):
    """The noise check's process lookup (every cuda row's foreign_gpu_processes) through the real names."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(pids=(11, 12)))
    assert gpu_processes.gpu_process_pids([0]) == [11, 12]
    assert gpu_processes.foreign_gpu_count([11, 12], ours={11}, using_gpu=True) == 1
