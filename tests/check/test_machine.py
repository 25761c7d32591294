"""bench/check/machine.py: the machine's and the GPUs' lines (fake NVML) and the busy-process verdict."""

from __future__ import annotations

import pytest

from bench.check import machine as check_machine
from bench.check.machine import OK, WARN, Line
from tests.fake_nvml import fake_nvml as fake_gpu  # spec'd from the installed nvidia-ml-py
from tests.fake_nvml import refuse


def by_what(lines: list[Line]) -> dict[str, Line]:
    return {line.what.removeprefix("GPU 0 (NVIDIA H100 80GB HBM3) "): line for line in lines}


def test_a_well_set_gpu_is_all_ticks():
    lines = by_what(check_machine.gpu_lines(fake_gpu(), 0, ours=set()))
    assert all(line.mark == OK for line in lines.values()), lines
    assert "SM 1980 of 1980 MHz" in lines["clocks"].found and "-lgc 1980" in lines["clocks"].found
    assert lines["ECC"].found == "on" and lines["MIG"].found == "off"


def test_a_query_the_gpu_does_not_support_is_said_not_failed():
    gpu = fake_gpu()
    refuse(gpu.nvmlDeviceGetEccMode)
    refuse(gpu.nvmlDeviceGetPowerManagementDefaultLimit)
    lines = by_what(check_machine.gpu_lines(gpu, 0, ours=set()))
    assert lines["ECC"].found == "not readable here (Not Supported)" and lines["power"].mark == OK
    assert lines["MIG"].found == "off"


def test_gpu_warnings_say_what_to_do_and_which_make_numbers_unreliable():
    gpu = fake_gpu(persistence=0, mask=0x1 | 0x40, power=(90_000, 500_000, 700_000), temperature=90, mig=1,
                   pids=(4242, 77))
    lines = by_what(check_machine.gpu_lines(gpu, 0, ours={77}))
    assert lines["persistence"].mark == WARN and "nvidia-smi -i 0 -pm 1" in lines["persistence"].advice
    assert not lines["persistence"].unreliable  # slower starts, not other numbers
    assert lines["throttling"].found == "hw_thermal" and lines["throttling"].unreliable  # gpu_idle is no slowdown
    assert "-pl 700" in lines["power"].advice and lines["power"].unreliable
    assert lines["temperature"].unreliable and lines["MIG"].unreliable
    assert lines["other processes"].found == "4242" and "stop process 4242" in lines["other processes"].advice


def fake_cpu_accounting(monkeypatch, noise, busy_s: float) -> None:
    """The machine's busy CPU seconds rise by `busy_s` over the sample; this process's own tree uses none."""
    readings = iter([100.0, 100.0 + busy_s])
    monkeypatch.setattr(noise, "busy_cpu_seconds", lambda cpus: next(readings))
    monkeypatch.setattr(noise.OwnClock, "read", lambda self: 0.0)


def test_short_lived_processes_make_the_machine_unfit(monkeypatch):
    """Processes that start and end inside the sample are in no snapshot, but the machine's accounting has them."""
    from bench.run.measure import noise

    monkeypatch.setattr(noise, "cpu_snapshot", lambda: {})
    fake_cpu_accounting(monkeypatch, noise, busy_s=3.0)  # 3 CPU s in 2 s: 1.5 cores
    monkeypatch.setattr(check_machine.time, "sleep", lambda s: None)
    monkeypatch.setattr(check_machine.time, "monotonic", iter([0.0, 2.0]).__next__)
    line = check_machine.busy_line()
    assert line.mark == WARN and line.unreliable and "1.50 of" in line.found


def test_busy_processes_make_the_machine_unfit(monkeypatch):
    from bench.run.measure import noise

    snapshots = iter([{4242: (1.0, "burner", 0.0)}, {4242: (1.0, "burner", 4.0)}])  # 4 CPU s in 2 s: 2 cores
    monkeypatch.setattr(noise, "cpu_snapshot", lambda: next(snapshots))
    fake_cpu_accounting(monkeypatch, noise, busy_s=4.0)
    monkeypatch.setattr(check_machine.time, "sleep", lambda s: None)
    monkeypatch.setattr(check_machine.time, "monotonic", iter([0.0, 2.0]).__next__)
    line = check_machine.busy_line()
    assert line.mark == WARN and line.unreliable and "burner (4242) 2.00" in line.found
    assert "kill 4242" in line.advice


def test_a_quiet_machine_is_fit(monkeypatch):
    from bench.run.measure import noise

    snapshots = iter([{9: (1.0, "sshd", 0.0)}, {9: (1.0, "sshd", 0.02)}])
    monkeypatch.setattr(noise, "cpu_snapshot", lambda: next(snapshots))
    fake_cpu_accounting(monkeypatch, noise, busy_s=0.02)
    monkeypatch.setattr(check_machine.time, "sleep", lambda s: None)
    monkeypatch.setattr(check_machine.time, "monotonic", iter([0.0, 2.0]).__next__)
    assert check_machine.busy_line().mark == OK


@pytest.mark.gpu
def test_real_gpu_lines():
    """NVML on a real GPU answers every query the check makes."""
    lines = check_machine.all_gpu_lines()
    assert lines and all(line.mark in (OK, WARN) for line in lines), lines
    whats = " ".join(line.what for line in lines)
    for what in ("persistence", "clocks", "throttling", "power", "temperature", "ECC", "MIG", "other processes"):
        assert what in whats
