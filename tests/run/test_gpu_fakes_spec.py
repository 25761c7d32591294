"""The GPU path's other doubles held to the real libraries: torch.cuda's memory and device-name functions spec'd from
the installed torch (a name or a signature torch lacks fails), and profiler events spec'd from torch's own kineto
event class, with and without torch 2.11's missing `activity_type`."""

from __future__ import annotations

from unittest import mock

import torch
from torch.autograd import DeviceType

from bench.run.measure import device_time, memory, peaks

CUDA = torch.device("cuda")
KinetoEvent = torch._C._autograd._KinetoEvent


def spec(monkeypatch, name: str, **behaviour):
    """torch.cuda.<name> replaced by a double with its real signature."""
    double = mock.create_autospec(getattr(torch.cuda, name), **behaviour)
    monkeypatch.setattr(torch.cuda, name, double)
    return double


def test_gpu_peak_memory_reads_torch_cuda_with_its_real_signatures(monkeypatch):
    reset = spec(monkeypatch, "reset_peak_memory_stats")
    spec(monkeypatch, "max_memory_allocated", return_value=3 * 2**30)
    spec(monkeypatch, "max_memory_reserved", return_value=4 * 2**30)
    memory.reset_gpu_peak(CUDA)
    reset.assert_called_once_with(CUDA)
    peak = memory.gpu_peak(CUDA)
    assert (peak.peak_gpu_mem_allocated_mb, peak.peak_gpu_mem_reserved_mb) == (3072.0, 4096.0)


def test_the_peak_table_reads_the_device_name_through_torch(monkeypatch):
    spec(monkeypatch, "get_device_name", return_value="NVIDIA H100 80GB HBM3")
    assert peaks.table_peak(CUDA, "bf16") == (989.4, "table: h100")


def event(start: int, end: int, device=DeviceType.CUDA, activity: str | None = "kernel", annotation=False):
    """A kineto event: torch's own class's surface; `activity` None: torch 2.11's, which has no activity_type."""
    names = [n for n in dir(KinetoEvent) if not n.startswith("_") and (activity is not None or n != "activity_type")]
    double = mock.NonCallableMock(spec_set=names)
    double.start_ns.return_value, double.end_ns.return_value = start, end
    double.device_type.return_value = device
    double.is_user_annotation.return_value = annotation
    for flag in ("is_python_function", "is_hidden_event"):  # torch 2.11's event has neither
        if flag in names:
            getattr(double, flag).return_value = False
    if activity is not None and "activity_type" in names:  # torch 2.11's event has none
        double.activity_type.return_value = activity
    return double


def test_device_work_is_read_from_the_events_real_surface_on_both_torch_versions():
    assert device_time.is_device_work(event(0, 5), CUDA)
    if hasattr(KinetoEvent, "activity_type"):  # torch >= 2.12 names the activity; 2.11 only the annotation flag
        assert not device_time.is_device_work(event(0, 5, activity="gpu_user_annotation"), CUDA)
    assert device_time.is_device_work(event(0, 5, activity=None), CUDA)  # 2.11: the device type decides
    assert not device_time.is_device_work(event(0, 5, activity=None, annotation=True), CUDA)
    assert not device_time.is_device_work(event(0, 5, device=DeviceType.CPU, activity="cpu_op"), CUDA)
    spans = [(e.start_ns(), e.end_ns()) for e in (event(0, 10), event(5, 20), event(30, 35))]
    assert device_time.union_length(spans) == 25
