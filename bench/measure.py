"""Measurement: Lightning callbacks for training speed, time-to-target and divergence; inference timing; FLOPs."""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import lightning as L
import torch

WARMUP_STEPS = 5  # excluded from throughput (allocator warm-up, cudnn autotune, compile)
WINDOW_STEPS = 10  # throughput = median over windows of this many steps


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TrainSpeed(L.Callback):
    """Samples/s over timed windows after warm-up, and the share of step time spent waiting for data.

    A step's time runs from the end of the previous batch to the end of this one, so it contains the loader's
    fetch (the data wait: previous batch end -> this batch start) and the model's forward/backward/step.
    """

    def __init__(self, world_size: int = 1) -> None:
        self.world_size = world_size
        self.step_times: list[float] = []
        self.wait_times: list[float] = []
        self.step_samples: list[int] = []
        self._last_end: float | None = None
        self._start: float | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        synchronize(pl_module.device)
        self._last_end = time.perf_counter()  # the epoch's first fetch counts as waiting for data

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        synchronize(pl_module.device)
        now = time.perf_counter()
        if self._last_end is not None and self._start is not None:
            self.step_times.append(now - self._last_end)
            self.wait_times.append(self._start - self._last_end)
            self.step_samples.append(batch_size_of(batch) * self.world_size)
        self._last_end = now

    def samples_per_s(self) -> float | None:
        times, samples = self.step_times[WARMUP_STEPS:], self.step_samples[WARMUP_STEPS:]
        if not times:  # very short runs (smoke): use what there is after the first step
            times, samples = self.step_times[1:], self.step_samples[1:]
        if not times:
            return None
        windows = [(sum(samples[i:i + WINDOW_STEPS]), sum(times[i:i + WINDOW_STEPS]))
                   for i in range(0, len(times), WINDOW_STEPS)]
        return statistics.median(n / t for n, t in windows if t > 0)

    def data_wait_fraction(self) -> float | None:
        steps = self.step_times[WARMUP_STEPS:] or self.step_times
        waits = self.wait_times[WARMUP_STEPS:] or self.wait_times
        return sum(waits) / sum(steps) if steps and sum(steps) > 0 else None


def batch_size_of(batch: Any) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0]) if torch.is_tensor(first) and first.dim() > 0 else 1


class QualityWatch(L.Callback):
    """Time-to-target (wall-clock since fit start until val/<metric> first reaches the target) and divergence."""

    def __init__(self, metric: str, direction: str, target: float | None) -> None:
        self.key, self.direction, self.target = f"val/{metric}", direction, target
        self.fit_start: float | None = None
        self.time_to_target: float | None = None
        self.steps = 0

    def on_fit_start(self, trainer, pl_module) -> None:
        self.fit_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps += 1
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if torch.is_tensor(loss) and not torch.isfinite(loss.detach()).all():
            raise Diverged(f"non-finite training loss ({loss.item()}) at step {self.steps}")

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.key)
        if value is None or self.target is None or self.time_to_target is not None or trainer.sanity_checking:
            return
        value = float(value)
        reached = value >= self.target if self.direction == "max" else value <= self.target
        if reached:
            synchronize(pl_module.device)
            self.time_to_target = time.perf_counter() - self.fit_start


def as_args(example: Any) -> tuple:
    return example if isinstance(example, tuple) else (example,)


@torch.no_grad()
def inference_timing(model: torch.nn.Module, example: Any, device: torch.device, autocast_dtype: torch.dtype | None,
                     warmup: int = 3, iterations: int = 20) -> dict[str, float]:
    """Latency p50/p95 (ms) and samples/s of eval-mode forward passes at the example's batch size."""
    args = as_args(example)
    batch = batch_size_of(args)
    model.eval()
    latencies = []
    context = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
               else torch.autocast(device.type, enabled=False))
    with context:
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
    return {"latency_p50_ms": p50 * 1e3, "latency_p95_ms": p95 * 1e3, "infer_samples_per_s": batch / p50}


def forward_flops_per_sample(model: torch.nn.Module, example: Any) -> float | None:
    """FLOPs of one forward pass per sample, counted by torch.utils.flop_counter (Lightning's measure_flops)."""
    from lightning.fabric.utilities.throughput import measure_flops

    args = as_args(example)
    model.eval()
    with torch.no_grad():
        total = measure_flops(model, lambda: model(*args))
    return total / batch_size_of(args) if total else None
