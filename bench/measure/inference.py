"""Inference latency and throughput of eval-mode forward passes on the run's device and precision."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from bench.measure import Columns
from bench.measure.steps import batch_size_of, synchronize
from bench.precision import Precision

WARMUP_CALLS = 5  # cudnn autotune, allocator, (re)compilation of the eval graph
MIN_CALLS, MAX_CALLS, BUDGET_S = 10, 100, 1.0  # each loop: at least 10 calls, then until 1 s or 100 calls


@dataclass(frozen=True)
class Latency(Columns):
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    infer_samples_per_s: float



def as_args(example: Any) -> tuple:
    return example if isinstance(example, tuple) else (example,)


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def timed_calls(call, device: torch.device) -> list[float]:
    """Seconds of each call, each alone: CUDA events around it on a GPU, the host waiting after each."""
    latencies: list[float] = []
    started = time.perf_counter()
    while len(latencies) < MIN_CALLS or (len(latencies) < MAX_CALLS and time.perf_counter() - started < BUDGET_S):
        if device.type == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            call()
            end.record()
            end.synchronize()
            latencies.append(begin.elapsed_time(end) / 1e3)
        else:
            start = time.perf_counter()
            call()
            latencies.append(time.perf_counter() - start)
    return latencies


def back_to_back_seconds(call, device: torch.device, calls: int) -> float:
    """Seconds per call of `calls` calls issued back to back, the host waiting only at the end."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(calls):
        call()
    synchronize(device)
    return (time.perf_counter() - start) / calls


@torch.no_grad()
def inference_timing(model: torch.nn.Module, args: tuple, device: torch.device, precision: Precision) -> Latency:
    """Latency percentiles (ms) of single forward passes and samples/s of back-to-back ones, at the inputs' batch."""
    model.eval()
    with precision.autocast(device.type):
        def call():
            return model(*args)

        for _ in range(WARMUP_CALLS):
            call()
        synchronize(device)
        latencies = sorted(timed_calls(call, device))
        per_call = back_to_back_seconds(call, device, len(latencies))
    ms = [s * 1e3 for s in latencies]
    return Latency(percentile(ms, 0.5), percentile(ms, 0.9), percentile(ms, 0.95), percentile(ms, 0.99),
                   batch_size_of(args) / per_call)
