"""Training speed, as a Lightning callback over the Trainer's own loop (time-to-target and divergence:
bench/run/measure/quality.py).

No host synchronisation inside a timed window: the device is synchronised only at window ends (every
WINDOW_STEPS steps), where the clock is read and the loss is checked for NaN/inf.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import lightning as L
import torch
from lightning.pytorch.profilers import Profiler

from bench.core import stats
from bench.core.row import Columns
from bench.run.measure.device_time import device_time_s, start_profiler, union_length  # noqa: F401 - union_length: API
from bench.run.measure.steps import batch_size_of, synchronize

WARMUP_STEPS = 10  # before the window: allocator warm-up, cudnn autotune, (re)compilation
TIMED_STEPS = 100  # the window's length ...
# ... except on a CPU, where it may stop at 10 s once it has 20 steps: a bound for very slow steps (a large size
# on a CPU), long enough that a 60 ms step (the classic cnn on 2 cores) still gets its 100.
CPU_WINDOW_S, CPU_MIN_STEPS = 10.0, 20
WINDOW_STEPS = 10  # throughput = median over sub-windows of this many steps; its spread is reported too
PROFILED_STEPS = 10  # after the window: the model's own device time, from the profiler's kernel/op times
# A window carried into a fit of its own (after the quality fit): the module, allocator, kernels and compiled graph
# are warm already; only the new Trainer's first steps (optimizer state, the FLOP-counted step, the loader's start)
# are left out of the clock.
REWARM_STEPS = 2


@dataclass(frozen=True)
class TrainThroughput(Columns):
    """The speed window's result: the Trainer loop's rate, the model's own device rate and the share between."""

    train_samples_per_s: float | None = None
    train_samples_per_s_spread: float | None = None
    timed_steps: int = 0
    data_wait_fraction: float | None = None
    host_overhead_fraction: float | None = None
    device_samples_per_s: float | None = None
    device_busy_fraction: float | None = None


class FetchTimer(Profiler):
    """Seconds spent inside the train loader's `next()`, through the profiler hook Lightning's fetcher calls around
    each fetch (`[_TrainingEpochLoop].train_dataloader_next`); every other profiled action costs one string test.
    Give it to the Trainer as `profiler=` and the speed window splits the host time between steps with it."""

    FETCH = "train_dataloader_next"

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self._started: float | None = None

    def start(self, action_name: str) -> None:
        if action_name.endswith(self.FETCH):
            self._started = time.perf_counter()

    def stop(self, action_name: str) -> None:
        if self._started is not None and action_name.endswith(self.FETCH):
            self.seconds += time.perf_counter() - self._started
            self._started = None

    def summary(self) -> str:
        return ""


class SpeedWindow(L.Callback):
    """Warm-up steps, then a timed window of the Trainer loop, then a few profiled steps; then it stops the fit.

    A step runs from the end of the previous batch to the end of this one, so the window contains the loader's
    fetch and Lightning's loop (previous batch end -> this batch start, read on the host without synchronising)
    as well as the model's forward/backward/step. With a FetchTimer as the Trainer's profiler, that gap is split
    into the data wait (the loader's `next()`) and the rest of the host's loop. Every sub-window is WINDOW_STEPS
    training steps long: an epoch's end or a validation (neither a training step) pauses its clock, which goes on
    when training resumes (the next epoch's start, or the validation's end mid-epoch), so a sub-window may span an
    epoch's end without timing it. (Sub-windows cut short there, 1-9 steps, spread far wider than 10-step ones:
    issue 31.) Only a fit that ends mid-window leaves a shorter one, which the rate uses only where no full one exists.

    In quick/standard/full the window rides along the quality fit (profiled=0, stop=False: it only times), and
    `carry_on` takes it into a short fit of its own afterwards for the profiled steps and whatever timed steps the
    quality fit was too short to give. Listeners (the energy meter) hear each sub-window open and close, right after
    the window synchronised the device.
    """

    def __init__(self, world_size: int = 1, warmup: int = WARMUP_STEPS, timed: int = TIMED_STEPS,
                 profiled: int = PROFILED_STEPS, stop: bool = True) -> None:
        self.world_size, self.warmup, self.timed, self.profiled, self.stop = world_size, warmup, timed, profiled, stop
        self.steps = 0
        self.largest_batch = 0  # the most samples one training step got on this device (batch size check)
        self.windows: list[tuple[int, int, float]] = []  # (steps, samples, seconds) of each closed sub-window
        self.waits = 0.0  # host time between timed steps (previous batch end -> this batch start)
        self.fetches: float | None = None  # the loader's share of it, when the Trainer has a FetchTimer
        self._fetch_mark = self._fetch_at_start = 0.0
        self.timing_done = False
        self.device_seconds: float | None = None
        self.profiled_steps = self.profiled_samples = 0
        self.profiled_seconds = 0.0  # wall time of the profiled steps
        self.on_cpu = False
        self._open: list[int] | None = None  # [steps, samples] of the sub-window being timed
        self._paused = False  # the open sub-window's clock stopped (an epoch end, a validation)
        self._timed_s = 0.0  # the open sub-window's seconds before its last pause
        self._window_start = self._last_end = self._batch_start = self._profile_start = 0.0
        self._profiler = None
        self.profile_note: str | None = None
        self.listeners: list = []  # objects with opened() / closed(): told where the clock starts and stops

    def carry_on(self, warmup: int, profiled: int = PROFILED_STEPS) -> int:
        """Continue this window in a fit of its own (stopping it when done): `warmup` steps again (a new Trainer:
        optimizer state, counted FLOPs), the timed steps still missing, then the profiled ones. Returns the fit's
        step budget (the timed part three times over: room for epoch ends; the window stops the fit early)."""
        self.warmup, self.profiled, self.stop = self.steps + warmup, profiled, True
        missing = 0 if self.timing_done else max(0, self.timed - self.timed_steps())
        return warmup + 3 * missing + profiled

    def timed_steps(self) -> int:
        return sum(steps for steps, _, _ in self.windows)

    def timed_samples(self) -> int:
        """Samples of the steps the clock has run over so far: the closed sub-windows' and the open one's."""
        return sum(n for _, n, _ in self.windows) + (self._open[1] if self._open else 0)

    def _restart(self, device: torch.device) -> None:
        synchronize(device)
        for listener in self.listeners:
            listener.opened()
        self._window_start = self._last_end = time.perf_counter()
        self._open, self._paused, self._timed_s = [0, 0], False, 0.0

    def _close(self, device: torch.device, trainer=None) -> None:
        """End the open sub-window: with _pause and _resume, the only places the host waits for the device while
        timing. With the trainer (a sub-window closed by its length), check whether the window is now long enough."""
        if self._open is None:
            return
        if not self._paused:
            synchronize(device)
            self._timed_s += time.perf_counter() - self._window_start
        if self._open[0]:
            self.windows.append((self._open[0], self._open[1], self._timed_s))
        was_paused, self._open, self._paused, self._timed_s = self._paused, None, False, 0.0
        if trainer is not None and not self.timing_done:
            self._check_done(trainer, device)
        if not was_paused:  # a paused sub-window told its listeners already
            for listener in self.listeners:
                listener.closed()

    def _pause(self, device: torch.device) -> None:
        """Stop the open sub-window's clock (an epoch's end, a validation): its steps so far stay in it."""
        if self._open is None or self._paused:
            return
        synchronize(device)
        self._timed_s += time.perf_counter() - self._window_start
        self._paused = True
        for listener in self.listeners:
            listener.closed()

    def _resume(self, trainer, device: torch.device) -> None:
        """Training goes on: the paused sub-window's clock runs again (one is opened where none is)."""
        if self.steps < self.warmup or self.timing_done:
            return
        if self._open is None:
            self._restart(device)
        elif self._paused:
            synchronize(device)
            for listener in self.listeners:
                listener.opened()
            self._window_start = self._last_end = time.perf_counter()
            self._paused = False
        self._fetch_mark = self._fetched(trainer) or 0.0

    @staticmethod
    def _fetched(trainer) -> float | None:
        timer = getattr(trainer, "profiler", None)
        return timer.seconds if isinstance(timer, FetchTimer) else None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_start = time.perf_counter()
        self._fetch_at_start = self._fetched(trainer) or 0.0
        if (self.timing_done and self.profiled and self.steps >= self.warmup and self._profiler is None
                and self.device_seconds is None):
            self._profiler = start_profiler(pl_module.device)  # type: ignore[assignment]
            self._profile_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps += 1
        self.largest_batch = max(self.largest_batch, batch_size_of(batch))
        samples = batch_size_of(batch) * self.world_size
        if self._profiler is not None:
            self._profiled_step(trainer, pl_module, samples)
        elif self.steps == self.warmup:
            if not self.timing_done:
                self._restart(pl_module.device)
        elif self._open is not None and not self.timing_done:
            self.waits += self._batch_start - self._last_end
            if self._fetched(trainer) is not None:
                self.fetches = (self.fetches or 0.0) + self._fetch_at_start - self._fetch_mark
            self._open = [self._open[0] + 1, self._open[1] + samples]
            if self._open[0] >= WINDOW_STEPS:
                self._close(pl_module.device, trainer)
                if not self.timing_done:
                    self._restart(pl_module.device)
        self._last_end = time.perf_counter()
        self._fetch_mark = self._fetched(trainer) or 0.0

    def _check_done(self, trainer, device: torch.device) -> None:
        timed, seconds = self.timed_steps(), sum(w[2] for w in self.windows)
        if timed >= self.timed or (device.type == "cpu" and timed >= CPU_MIN_STEPS and seconds >= CPU_WINDOW_S):
            self._open, self.timing_done = None, True
            if not self.profiled and self.stop:
                trainer.should_stop = True

    def _profiled_step(self, trainer, pl_module, samples: int) -> None:
        self.profiled_steps += 1
        self.profiled_samples += samples
        if self.profiled_steps < self.profiled:
            return
        synchronize(pl_module.device)
        self.profiled_seconds = time.perf_counter() - self._profile_start
        self.on_cpu = pl_module.device.type == "cpu"
        self.device_seconds = device_time_s(self._profiler, pl_module.device)  # type: ignore[arg-type]
        self.profile_note = self._profiler.failure  # type: ignore[attr-defined]  # the row's message says why device time is missing
        self._profiler = None
        if self.stop:
            trainer.should_stop = True

    def on_validation_start(self, trainer, pl_module) -> None:
        self._pause(pl_module.device)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._pause(pl_module.device)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._resume(trainer, pl_module.device)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not getattr(trainer.fit_loop.epoch_loop.batch_progress, "is_last_batch", False):  # mid-epoch validation
            self._resume(trainer, pl_module.device)  # (at an epoch's end the next epoch's start resumes)

    def on_train_end(self, trainer, pl_module) -> None:
        self._close(pl_module.device)
        if self._profiler is not None:  # the fit ended while profiling: no device time
            self._profiler.__exit__(None, None, None)
            self._profiler = None
            self.profile_note = (f"device time not measured: the fit ended after {self.profiled_steps} of "
                                 f"{self.profiled} profiled steps")

    def result(self) -> TrainThroughput:
        full = [w for w in self.windows if w[0] == WINDOW_STEPS] or self.windows  # a fit's short last one: see above
        rate, spread = stats.median_and_spread([n / s for _, n, s in full if s > 0])
        seconds = sum(w[2] for w in self.windows)
        device_rate = busy = None
        if self.device_seconds and rate and self.on_cpu:
            # The profiler slows the CPU ops it times, so the busy share is taken within the profiled steps and
            # the op-time rate scaled to the unprofiled window's.
            busy = min(1.0, self.device_seconds / self.profiled_seconds)
            device_rate = rate / busy
        elif self.device_seconds and rate:  # kernel times are not slowed by the profiler
            device_rate = self.profiled_samples / self.device_seconds
            busy = rate / device_rate
        data = host = None
        if seconds and self.fetches is not None:
            data, host = self.fetches / seconds, max(0.0, self.waits - self.fetches) / seconds
        return TrainThroughput(rate, spread, self.timed_steps(), data, host, device_rate, busy)

