"""Cost: parameters, FLOPs per sample, achieved TFLOP/s and MFU against the device's peak."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bench.measure.speed import batch_size_of
from bench.precision import Precision


@dataclass(frozen=True)
class Cost:
    flops_per_sample: float | None = None
    achieved_tflops: float | None = None
    peak_tflops: float | None = None
    mfu: float | None = None

    def columns(self) -> dict[str, Any]:
        return dict(self.__dict__)


def forward_flops_per_sample(model: torch.nn.Module, args: tuple) -> float | None:
    """FLOPs of one forward pass per sample, counted by torch.utils.flop_counter (Lightning's measure_flops)."""
    from lightning.fabric.utilities.throughput import measure_flops

    model.eval()
    with torch.no_grad():
        total = measure_flops(model, lambda: model(*args))
    return total / batch_size_of(args) if total else None


def peak_tflops(device: torch.device, precision: Precision, world_size: int, override: float | None) -> float | None:
    """The MFU denominator: the user's figure, else Lightning's table for the device and dtype, x devices."""
    if override is not None:
        return override
    from lightning.fabric.utilities.throughput import get_available_flops

    available = get_available_flops(device, precision.compute_dtype)
    return available * world_size / 1e12 if available else None


def cost(forward_flops: float | None, train_samples_per_s: float | None, peak: float | None) -> Cost:
    """Training FLOPs = 3 x forward (backward is about twice the forward); achieved and MFU where measurable."""
    if not forward_flops:
        return Cost(peak_tflops=peak)
    flops = 3 * forward_flops
    achieved = flops * train_samples_per_s / 1e12 if train_samples_per_s else None
    return Cost(flops, achieved, peak, achieved / peak if achieved and peak else None)
