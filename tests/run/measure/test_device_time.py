"""bench/run/measure/device_time.py: the profiler's device time, read on every torch version (2.11's profiler events
have no `activity_type`), or left empty with a note."""

import torch
from torch.autograd import DeviceType

from bench.run.measure import device_time, speed
from tests.helpers import fit_fake


class Event:
    """A kineto event as torch 2.11 has it: no activity_type()."""

    def __init__(self, start, end, device=DeviceType.CPU, annotation=False):
        self.start, self.end, self.device, self.annotation = start, end, device, annotation

    def start_ns(self):
        return self.start

    def end_ns(self):
        return self.end

    def device_type(self):
        return self.device

    def is_user_annotation(self):
        return self.annotation


class Broken(Event):
    def device_type(self):
        raise RuntimeError("unreadable event")


class WithoutActivityType:
    """A real event seen through torch 2.11's interface."""

    def __init__(self, event):
        self._event = event

    def __getattr__(self, name):
        if name == "activity_type":
            raise AttributeError(name)
        return getattr(self._event, name)


class FakeProfiling(device_time.Profiling):
    def __init__(self, events):
        self.device, self.failure = torch.device("cpu"), None
        self.profiler = type("P", (), {"__exit__": lambda *a: None, "profiler": type("R", (), {
            "kineto_results": type("K", (), {"events": lambda self: events})()})()})()


def test_events_without_activity_type_are_read_by_device_and_annotation():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert device_time.is_device_work(Event(0, 5), cpu)
    assert not device_time.is_device_work(Event(0, 50, annotation=True), cpu)  # e.g. the optimizer step's range
    assert not device_time.is_device_work(Event(0, 5), cuda)
    assert device_time.is_device_work(Event(0, 5, DeviceType.CUDA), cuda)
    assert not device_time.is_device_work(Event(0, 9, DeviceType.CUDA, annotation=True), cuda)  # gpu_user_annotation
    events = [Event(0, 10), Event(2, 4), Event(0, 100, annotation=True), Event(20, 25)]
    assert device_time.device_time_s(FakeProfiling(events), cpu) == 15e-9


def test_events_whose_methods_raise_leave_no_device_time_and_a_note():
    profiling = FakeProfiling([Event(0, 10), Broken(0, 10)])
    assert device_time.device_time_s(profiling, torch.device("cpu")) is None
    assert "profiler events unreadable: unreadable event" in profiling.failure


def test_a_window_reads_real_events_through_torch_211s_interface(monkeypatch):
    original = device_time.is_device_work
    monkeypatch.setattr(device_time, "is_device_work",
                        lambda event, device: original(WithoutActivityType(event), device))
    window = speed.SpeedWindow(warmup=2, timed=20, profiled=3)
    fit_fake([window], max_steps=500, num_samples=400)
    assert window.result().device_samples_per_s > 0 and window.profile_note is None


def test_a_profiler_that_fails_leaves_the_device_columns_empty_with_a_note(monkeypatch):
    monkeypatch.setattr(device_time, "is_device_work", lambda event, device: Broken(0, 1).device_type())
    window = speed.SpeedWindow(warmup=2, timed=20, profiled=3)
    trainer = fit_fake([window], max_steps=500, num_samples=400)
    result = window.result()
    assert result.device_samples_per_s is None and result.device_busy_fraction is None
    assert result.train_samples_per_s > 0 and trainer.global_step < 500  # the window still ended the fit
    assert "profiler events unreadable" in window.profile_note


def test_device_time_counts_nested_and_overlapping_work_once():
    assert speed.union_length([(0, 10), (2, 5), (8, 14), (20, 21)]) == 15  # 0-14 and 20-21
    assert speed.union_length([]) == 0
