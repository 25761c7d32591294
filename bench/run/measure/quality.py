"""Time-to-target, stopping at the target, divergence and compile time, as one Lightning callback over the quality
run (step: the Trainer's validation and loss -> the quality columns' timings and the `diverged` status).

The loss is checked for NaN/inf only at window ends (every WINDOW_STEPS steps) and epoch ends: no host
synchronisation in between.
"""

from __future__ import annotations

import statistics
import time

import lightning as L
import torch

from bench.run.measure.speed import WINDOW_STEPS
from bench.run.measure.steps import loss_of, synchronize


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


# Metrics arrive as float32: 470 right of 500 is 0.93999999 there, below a target of 0.94 it equals. A relative
# tolerance far below one example in the smallest split (1/500) lets an exact hit count and nothing short of it.
TARGET_TOLERANCE = 1e-6


def meets(value: float, target: float, direction: str) -> bool:
    """Whether a metric value reaches its target (`max`: at or above it; `min`: at or below it)."""
    slack = TARGET_TOLERANCE * max(abs(target), 1e-12)
    return value >= target - slack if direction == "max" else value <= target + slack


class QualityWatch(L.Callback):
    """Time-to-target (wall-clock since training starts until val/<metric> first reaches the target), divergence, and
    the compile time (the first training step's excess over a typical one).

    With `stop`, the fit stops at that validation (MLPerf: training ends at the target), as Lightning's EarlyStopping
    stops it: `trainer.should_stop`, so no training step follows and the test after `fit` sees the model as it was
    there. The epochs the Trainer was given are then a cap.

    The loss's finiteness is accumulated on the device each step and read only every WINDOW_STEPS steps and at
    each epoch's end, so checking for divergence adds no host synchronisation to the steps in between.
    """

    def __init__(self, metric: str, direction: str, target: float | None, stop: bool = False) -> None:
        self.key, self.direction, self.target, self.stop = f"val/{metric}", direction, target, stop
        self.train_start: float | None = None
        self.train_seconds: float | None = None  # the whole training, set at its end
        self.time_to_target: float | None = None
        self.excluded_s = 0.0  # the harness's own host time during training (W&B history logging): not the model's
        # The validation value the target was judged on: the first that reached it, else the best one seen.
        self.judged_value: float | None = None
        self.steps = 0
        self.step_seconds: list[float] = []  # host-side, first steps only (for the compile time)
        self._nonfinite: torch.Tensor | None = None
        self._step_start = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        # After the module's own on_fit_start, which may prepare an instrument (the GAN's feature classifier).
        self.train_start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        if self.train_start is not None:
            self.train_seconds = time.perf_counter() - self.train_start

    @property
    def reached(self) -> bool:
        return self.time_to_target is not None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._step_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps += 1
        loss = loss_of(outputs)
        if loss is not None:
            bad = ~torch.isfinite(loss).all()
            self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad
        if self.steps <= 3:  # the first step compiles; two more give a typical step (synchronised: not timed)
            synchronize(pl_module.device)
            self.step_seconds.append(time.perf_counter() - self._step_start)
        if self.steps % WINDOW_STEPS == 0:
            self.check_finite()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.check_finite()

    def check_finite(self) -> None:
        if self._nonfinite is not None and bool(self._nonfinite):
            raise Diverged(f"non-finite training loss within steps {max(1, self.steps - WINDOW_STEPS + 1)}-"
                           f"{self.steps}")

    def compile_seconds(self) -> float | None:
        if len(self.step_seconds) < 2:
            return None
        return max(0.0, self.step_seconds[0] - statistics.median(self.step_seconds[1:]))

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.target is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.key)
        reached = value is not None and meets(float(value), self.target, self.direction)
        if value is not None and self.time_to_target is None and (
                reached or self.judged_value is None or meets(float(value), self.judged_value, self.direction)):
            self.judged_value = float(value)
        if reached and self.time_to_target is None and self.train_start is not None:
            synchronize(pl_module.device)
            self.time_to_target = time.perf_counter() - self.train_start - self.excluded_s
        # Every rank takes part in the decision (as EarlyStopping does), so DDP ranks stop together.
        if self.stop and trainer.strategy.reduce_boolean_decision(reached, all=False):
            trainer.should_stop = True
