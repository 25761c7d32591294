"""Peak memory: the GPU allocator's peaks and the run process's peak RSS."""

from __future__ import annotations

import ctypes
import os
import platform
import resource
from dataclasses import dataclass

import torch

from bench.core.row import Columns


@dataclass(frozen=True)
class Memory(Columns):
    peak_gpu_mem_allocated_mb: float | None = None
    peak_gpu_mem_reserved_mb: float | None = None



def reset_gpu_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def gpu_peak(device: torch.device) -> Memory:
    if device.type != "cuda":
        return Memory()
    return Memory(torch.cuda.max_memory_allocated(device) / 2**20, torch.cuda.max_memory_reserved(device) / 2**20)


def peak_rss_mb() -> float:
    """Peak RSS of this process or of its children (DDP ranks), whichever is larger; ru_maxrss is KiB on Linux. Never
    below the RSS now: the kernel's high-water mark is updated lazily and can trail a reading of /proc by a page or so
    (a row's peak below its own after-import baseline would be a contradiction)."""
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(max(usage, children) / 1024, rss_now_mb())


def rss_now_mb() -> float:
    """This process's resident set size now: taken after the imports, it is the baseline `peak_rss_mb` includes."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


# glibc malloc, as its environment variables name them: serve allocations up to 32 MiB (the most glibc allows) from
# the heap and never give freed heap back to the system. With glibc's defaults a tensor above its (adaptive) mmap
# threshold is mapped and unmapped again on every step, and each new mapping page-faults on first touch: a classic
# cnn step on a 2-core CPU took 1,800-8,200 page faults and ran at 1,780-2,320 samples/s from one fresh process to the
# next; kept, 2-60 faults. GPU runs keep their memory in torch's caching allocator; this does the same for the host.
HOST_MALLOC = {"MALLOC_MMAP_THRESHOLD_": 32 << 20, "MALLOC_TRIM_THRESHOLD_": 2**31 - 1}
MALLOPT_PARAMETER = {"MALLOC_MMAP_THRESHOLD_": -3, "MALLOC_TRIM_THRESHOLD_": -1}  # M_MMAP_THRESHOLD, M_TRIM_...


def keep_freed_host_memory() -> None:
    """Apply HOST_MALLOC to this process (mallopt) and to the processes it starts (the environment, which glibc reads
    at start-up), unless the user set those variables; the row's `env_vars` then records them. Not glibc: nothing."""
    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    for name, value in HOST_MALLOC.items():
        chosen = os.environ.setdefault(name, str(value))
        if chosen.isdigit():
            libc.mallopt(MALLOPT_PARAMETER[name], int(chosen))
