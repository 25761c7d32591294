"""Noise: what else ran on the machine during a run (load average, other busy processes, foreign GPU processes).

As optimum-benchmark's device isolation does, a benchmark notices when it shared its device: the row records it
and says so in `noise_warning`, which the console and the report show.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from bench.measure import Columns

BUSY_CORES = 0.2  # a process that used this many cores on average counts as busy
SHARED_CORES = 0.5  # others together using this many cores (or 10% of the machine, if more) make a run noisy
SHOWN_PROCESSES = 3

Snapshot = dict[int, tuple[float, str, float]]  # pid -> (create time, name, CPU seconds so far)


@dataclass(frozen=True)
class Noise(Columns):
    load_avg_start: float | None = None
    load_avg_end: float | None = None
    other_cpu_cores: float | None = None
    busy_processes: str = ""
    foreign_gpu_processes: int | None = None
    noise_warning: str = ""



def cpu_snapshot() -> Snapshot:
    """CPU seconds used so far by every process this process can see."""
    import psutil

    snapshot = {}
    for process in psutil.process_iter(["create_time", "name", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is not None:
            snapshot[process.pid] = (process.info["create_time"] or 0.0, process.info["name"] or "?",
                                     times.user + times.system)
    return snapshot


def own_pids() -> set[int]:
    """This process, its ancestors (the sweep) and its descendants (DDP ranks, compile workers, W&B service)."""
    import psutil

    me = psutil.Process()
    related = [me, *me.parents()]
    try:
        related += me.children(recursive=True)
    except psutil.Error:
        pass
    return {process.pid for process in related}


def other_process_cores(start: Snapshot, end: Snapshot, ours: set[int], seconds: float) -> dict[str, float]:
    """Average cores each process outside `ours` used between two snapshots, as {"name (pid)": cores}.

    A process that started in between counts all its CPU time; a reused pid (other create time) is a new process.
    """
    used = {}
    for pid, (created, name, cpu_s) in end.items():
        if pid in ours:
            continue
        before = start.get(pid)
        spent = cpu_s - before[2] if before and before[0] == created else cpu_s
        if spent > 0:
            used[f"{name} ({pid})"] = spent / max(seconds, 1e-9)
    return used


def gpu_indices(num_devices: int) -> list[int | str]:
    """The GPUs a run uses, as NVML sees them: CUDA_VISIBLE_DEVICES entries (indices or UUIDs) or the first N."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    chosen = visible[:num_devices] if visible else list(range(num_devices))
    return [int(v) if isinstance(v, str) and v.isdigit() else v for v in chosen]


def gpu_process_pids(indices: list[int | str]) -> list[int] | None:
    """Pids of the compute processes on those GPUs (NVML); None where NVML cannot tell (no driver, MIG, ...)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        pids = []
        for index in indices:
            handle = (pynvml.nvmlDeviceGetHandleByIndex(index) if isinstance(index, int)
                      else pynvml.nvmlDeviceGetHandleByUUID(index))
            pids += [p.pid for p in pynvml.nvmlDeviceGetComputeProcesses(handle)]
        return pids
    except Exception:
        return None
    finally:
        pynvml.nvmlShutdown()


def foreign_gpu_count(pids: list[int] | None, ours: set[int], using_gpu: bool) -> int | None:
    """Processes on the run's GPUs that are not the run's. Inside a container NVML may report host pids, so when
    none of ours appears but the run holds a GPU, one listed process is taken to be the run itself."""
    if pids is None:
        return None
    foreign = [pid for pid in pids if pid not in ours]
    if using_gpu and len(foreign) == len(pids) and pids:
        return len(foreign) - 1
    return len(foreign)


def warning(other_cores: float, busy: dict[str, float], foreign_gpu: int | None, cpu_count: int) -> str:
    """The noise warning of a run, empty when it ran alone."""
    parts = []
    if other_cores >= max(SHARED_CORES, 0.1 * cpu_count):
        shown = ", ".join(f"{name} {cores:.1f}" for name, cores in list(busy.items())[:SHOWN_PROCESSES])
        parts.append(f"other processes used {other_cores:.1f} of {cpu_count} CPU cores" + (f" ({shown})"
                                                                                            if shown else ""))
    if foreign_gpu:
        parts.append(f"{foreign_gpu} other process(es) on its GPU")
    return "shared device: " + "; ".join(parts) if parts else ""


class NoiseWatch:
    """Start before a run, stop after it: what else used the machine in between. Never raises: a noise check that
    fails leaves its columns empty rather than cost the row."""

    def __init__(self, device: str = "cpu", num_devices: int = 1) -> None:
        self.using_gpu = device == "cuda"
        self.num_devices = num_devices
        self.cpu_start: Snapshot | None = None

    def start(self) -> NoiseWatch:
        try:
            self.indices = gpu_indices(self.num_devices) if self.using_gpu else []
            self.load_start = os.getloadavg()[0]
            self.started = time.monotonic()
            self.gpu_start = foreign_gpu_count(gpu_process_pids(self.indices), own_pids(), False) \
                if self.using_gpu else None
            self.cpu_start = cpu_snapshot()
        except Exception:
            self.cpu_start = None
        return self

    def stop(self) -> Noise:
        if self.cpu_start is None:
            return Noise()
        try:
            return self.measure()
        except Exception:
            return Noise()

    def measure(self) -> Noise:
        ours = own_pids()
        cores = other_process_cores(self.cpu_start or {}, cpu_snapshot(), ours, time.monotonic() - self.started)
        busy = dict(sorted(((n, c) for n, c in cores.items() if c >= BUSY_CORES), key=lambda item: -item[1]))
        other = sum(cores.values())
        foreign = None
        if self.using_gpu:
            end = foreign_gpu_count(gpu_process_pids(self.indices), ours, True)
            foreign = max((n for n in (self.gpu_start, end) if n is not None), default=None)
        return Noise(load_avg_start=self.load_start, load_avg_end=os.getloadavg()[0], other_cpu_cores=other,
                     busy_processes=", ".join(f"{name} {c:.2f}" for name, c in list(busy.items())[:SHOWN_PROCESSES]),
                     foreign_gpu_processes=foreign,
                     noise_warning=warning(other, busy, foreign, os.cpu_count() or 1))
