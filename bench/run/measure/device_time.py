"""The model's own device time (step: the speed window's profiled steps -> seconds the device was busy).

torch.profiler over a few training steps after the timed window, read from its raw kineto events on every torch
version pyproject.toml allows; best effort: a profiler that fails leaves no device time and a note, never an error.
"""

from __future__ import annotations

import torch


class Profiling:
    """torch.profiler over the profiled steps, best effort: a profiler that fails to start, stop or be read leaves
    the device time empty and says why in `failure`, never an error (the row keeps everything else)."""

    def __init__(self, device: torch.device) -> None:
        from torch.profiler import ProfilerActivity, profile

        self.device, self.failure, self.profiler = device, None, None
        try:
            activity = ProfilerActivity.CUDA if device.type == "cuda" else ProfilerActivity.CPU
            profiler = profile(activities=[activity])
            profiler.__enter__()
            self.profiler = profiler
        except Exception as exc:
            self.failure = f"profiler did not start: {exc}".splitlines()[0]

    def __exit__(self, *exc) -> None:
        profiler, self.profiler = self.profiler, None
        if profiler is not None:
            try:
                profiler.__exit__(None, None, None)
            except Exception as error:
                self.failure = self.failure or f"profiler did not stop: {error}".splitlines()[0]
        return profiler  # type: ignore[return-value]


def start_profiler(device: torch.device) -> Profiling:
    """torch.profiler over the next steps: kernel times on a GPU, aten op self times on a CPU."""
    return Profiling(device)


DEVICE_WORK = ("kernel", "gpu_memcpy", "gpu_memset")  # profiler activity types that occupy a GPU
NOT_WORK = ("is_user_annotation", "is_python_function", "is_hidden_event")  # ranges around work, not work


def is_device_work(event, device: torch.device) -> bool:
    """Whether a kineto event is work on `device`: a kernel or copy on a GPU, an aten op on a CPU.

    torch 2.14 names each event's activity type; torch 2.11 has no `activity_type()`, so there the event's device
    type decides, less the user annotations (record_function ranges, e.g. the optimizer's step, which span gaps
    between the work) and Python-function events.
    """
    from torch.autograd import DeviceType

    wanted = DeviceType.CUDA if device.type == "cuda" else DeviceType.CPU
    if event.device_type() != wanted:
        return False
    activity = getattr(event, "activity_type", None)
    if activity is not None:
        return activity() in DEVICE_WORK if device.type == "cuda" else activity() == "cpu_op"
    return not any(getattr(event, flag, lambda: False)() for flag in NOT_WORK)


def device_time_s(profiling: Profiling, device: torch.device) -> float | None:
    """Seconds the device was busy during the profiled steps: the union of the kernel (and copy) intervals on a
    GPU, of the aten op intervals on a CPU, so nested or concurrent work is counted once. None, with the reason in
    `profiling.failure`, when the profiler failed.

    Read from the raw profiler events: `key_averages()` builds Python objects for every event, which took
    seconds for ten steps of a recurrent model on a CPU.
    """
    profiler = profiling.__exit__(None, None, None)  # type: ignore[func-returns-value]
    if profiler is None or profiling.failure:
        return None
    try:
        events = profiler.profiler.kineto_results.events()
        busy_ns = union_length([(e.start_ns(), e.end_ns()) for e in events if is_device_work(e, device)])
    except Exception as exc:
        profiling.failure = f"profiler events unreadable: {exc}".splitlines()[0]
        return None
    return busy_ns / 1e9 if busy_ns else None


def union_length(spans: list[tuple[int, int]]) -> int:
    """Total length covered by (start, end) intervals."""
    total, reach = 0, None
    for start, end in sorted(spans):
        if reach is None or start > reach:
            total, reach = total + end - start, end
        elif end > reach:
            total, reach = total + end - reach, end
    return total
