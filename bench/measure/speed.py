"""Training speed, time-to-target and divergence, as Lightning callbacks over the Trainer's own loop."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch

from bench import stats

WARMUP_STEPS = 5  # excluded from throughput (allocator warm-up, cudnn autotune, compile)
WINDOW_STEPS = 10  # throughput = median over windows of this many steps


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch_size_of(batch: Any) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0]) if torch.is_tensor(first) and first.dim() > 0 else 1


@dataclass(frozen=True)
class TrainThroughput:
    """The speed window's result."""

    train_samples_per_s: float | None
    train_samples_per_s_spread: float | None
    timed_steps: int
    data_wait_fraction: float | None

    def columns(self) -> dict[str, Any]:
        return dict(self.__dict__)


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

    def result(self) -> TrainThroughput:
        start = WARMUP_STEPS if len(self.step_times) > WARMUP_STEPS else 1  # smoke: what there is after step 1
        times, samples, waits = self.step_times[start:], self.step_samples[start:], self.wait_times[start:]
        rate, spread = stats.median_and_spread(stats.windowed_rates(samples, times, WINDOW_STEPS))
        wait = sum(waits) / sum(times) if times and sum(times) > 0 else None
        return TrainThroughput(rate, spread, len(times), wait)


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
