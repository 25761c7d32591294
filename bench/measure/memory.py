"""Peak memory: the GPU allocator's peaks and the run process's peak RSS."""

from __future__ import annotations

import resource
from dataclasses import dataclass

import torch

from bench.measure import Columns


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
    """Peak RSS of this process or of its children (DDP ranks), whichever is larger; ru_maxrss is KiB on Linux."""
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(usage, children) / 1024


def rss_now_mb() -> float:
    """This process's resident set size now: taken after the imports, it is the baseline `peak_rss_mb` includes."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20
