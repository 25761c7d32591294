"""Inference latency and throughput of eval-mode forward passes on the run's device and precision."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from bench.measure.speed import batch_size_of, synchronize
from bench.precision import Precision


@dataclass(frozen=True)
class Latency:
    latency_p50_ms: float
    latency_p95_ms: float
    infer_samples_per_s: float

    def columns(self) -> dict[str, Any]:
        return dict(self.__dict__)


def as_args(example: Any) -> tuple:
    return example if isinstance(example, tuple) else (example,)


@torch.no_grad()
def inference_timing(model: torch.nn.Module, args: tuple, device: torch.device, precision: Precision,
                     warmup: int = 3, iterations: int = 20) -> Latency:
    """Latency p50/p95 (ms) and samples/s of eval-mode forward passes at the inputs' batch size."""
    batch = batch_size_of(args)
    model.eval()
    latencies = []
    with precision.autocast(device.type):
        for i in range(warmup + iterations):
            synchronize(device)
            start = time.perf_counter()
            model(*args)
            synchronize(device)
            if i >= warmup:
                latencies.append(time.perf_counter() - start)
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)]
    return Latency(p50 * 1e3, p95 * 1e3, batch / p50)
