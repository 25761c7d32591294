"""The harness's own cost (step: one module -> the runner's speed window, a bare Lightning Trainer and an expert
plain loop on the same batches -> their throughputs and ratios), for `dnnbench check` and benchmarks/overhead.py.

  runner   the runner's speed-window fit (bench.run.session.speed_window_fit: what a row's train_samples_per_s and
           device_samples_per_s come from);
  bare     a Lightning Trainer with no logger and no callbacks of ours, on the same batches (on a GPU the
           datamodule's device-resident ones), timed over the same number of steps after the same warm-up;
  expert   a plain PyTorch loop: forward, loss, backward, AdamW step (manual-optimization modules step their own
           optimizers) on batches already on the device, the host waiting only at the ends of 10-step windows.
The expert steps the optimizers the module configured under the bare Trainer (its fused-or-for-each AdamW, as a run
has it), and its device cost is read over PROFILED_STEPS more steps by the same profiler as the runner's.
Ratios: runner / bare (what the harness adds to Lightning: bar >= 0.95), runner device cost / expert device cost (the
model-cost measure: bar >= 0.95; device-busy time on both sides) and runner / expert (host clocks on both sides).
A module whose step needs the Trainer itself (dbn: the epoch decides which RBM trains) has no expert loop (None).

`dnnbench check` runs `probe` inside a real run's child (forked from the warm server like every run, so any way
the real launch path differs from a plain loop shows up): bench/run/child.py calls it instead of training when the
job's environment has DNNBENCH_PROBE (the number of alternating repeats).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

import datamodules
import lightning_modules
from bench.core.choices import Precision
from bench.core.config import RunConfig
from bench.core.stats import median_and_spread
from bench.run.measure.device_time import device_time_s, start_profiler
from bench.run.measure.speed import PROFILED_STEPS, WARMUP_STEPS, WINDOW_STEPS
from bench.run.measure.steps import batch_size_of, synchronize
from datamodules.base import DeviceBatches, TensorDataModule


class NeedsTrainer(Exception):
    """The module's training step cannot run without a Trainer, so there is no plain loop to compare with."""


def build(name: str, device: torch.device, data_args: dict, seed: int = 0):
    cls = lightning_modules.get(name)
    spec = cls.bench
    L.seed_everything(seed, verbose=False)
    data = spec.classic.datamodule if not data_args else "synthetic"
    kwargs = (spec.classic.data if not data_args else data_args) | {"batch_size": data_args.get(
        "batch_size", spec.classic.batch_size)}
    dm = datamodules.get(data)(seed=seed, **kwargs)
    dm.setup("fit")
    return lightning_modules.build_model(cls, dm).to(device), dm


def plain_step(model: L.LightningModule, optimizers: list | None = None):
    """One plain training step of `model`: its training_step, then backward and step unless it does its own.
    `optimizers`: those the module configured under a Trainer (its fused-or-for-each AdamW exactly as a run steps
    it); without them, AdamW with the fused kernel where the module's parameters are on a GPU (base.fused_on_gpu)."""
    if model.automatic_optimization:
        from lightning_modules.base import fused_on_gpu

        parameters, kernel = list(model.parameters()), fused_on_gpu(list(model.parameters()))
        optimizer = optimizers[0] if optimizers else torch.optim.AdamW(
            parameters, lr=1e-3, fused=kernel.get("fused"), foreach=kernel.get("foreach"))

        def step(batch, batch_idx):
            loss = model.training_step(batch, batch_idx)  # self.log is a no-op without a Trainer
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]  # automatic optimization: training_step returned the loss
            optimizer.step()
        return step
    try:
        configured = model.configure_optimizers()
    except RuntimeError as exc:  # "... is not attached to a `Trainer`"
        raise NeedsTrainer(str(exc)) from exc
    # Manual optimization: hand the module its optimizers and a bare backward in place of the Trainer's.
    model.optimizers = lambda: configured  # type: ignore[method-assign,assignment]
    model.manual_backward = lambda loss: loss.backward()  # type: ignore[method-assign,misc]
    return lambda batch, batch_idx: model.training_step(batch, batch_idx)


def batches_forever(dm, device: torch.device):
    """The datamodule's training batches, epoch after epoch; on a GPU from tensors already on the device."""
    while True:
        if isinstance(dm, TensorDataModule) and device.type == "cuda":
            loader = DeviceBatches(tuple(t.to(device) for t in dm.train_set.tensors), dm.batch_size, True, dm.seed)
        else:
            loader = dm.train_dataloader()
        yield from loader


def expert_samples_per_s(name: str, steps: int, device: torch.device, data_args: dict) -> float:
    model, dm = build(name, device, data_args)
    return expert_rate(model, dm, steps, device)[0]


def expert_rate(model: L.LightningModule, dm, steps: int, device: torch.device, optimizers: list | None = None
                ) -> tuple[float, float | None]:
    """(samples/s by the host's clock, samples/s of the device's busy time over PROFILED_STEPS more steps, read by
    the profiler as the runner's device cost is: the same kind of clock on each side of each ratio)."""
    rates, step, batches = expert_windows(model, dm, steps, device, optimizers)
    return statistics.median(rates), device_rate(step, batches, device)


def expert_windows(model: L.LightningModule, dm, steps: int, device: torch.device, optimizers: list | None = None):
    """The expert loop's samples/s in each WINDOW_STEPS-step window over `steps` steps after WARMUP_STEPS (the
    host waits for the device only at window ends), with its step and batches to go on with."""
    model.to(device)  # after a Lightning fit, its teardown left the module on the CPU
    if hasattr(dm, "policy"):
        dm.policy = model.act  # the DQN's experience stream acts with the model being trained
    step = plain_step(model.train(), optimizers)
    batches = batches_forever(dm, device)
    for i in range(WARMUP_STEPS):
        step(next(batches), i)
    rates = []
    for _ in range(max(1, steps // WINDOW_STEPS)):
        synchronize(device)
        start, samples = time.perf_counter(), 0
        for i in range(WINDOW_STEPS):
            batch = next(batches)
            step(batch, i)
            samples += batch_size_of(batch)
        synchronize(device)
        rates.append(samples / (time.perf_counter() - start))
    return rates, step, batches


def device_rate(step, batches, device: torch.device) -> float | None:
    """Samples per second of device-busy time over PROFILED_STEPS steps (None where the profiler failed)."""
    profiling, samples = start_profiler(device), 0
    for i in range(PROFILED_STEPS):
        batch = next(batches)
        step(batch, i)
        samples += batch_size_of(batch)
    synchronize(device)
    busy_s = device_time_s(profiling, device)
    return samples / busy_s if busy_s else None


class StepClock(L.Callback):
    """Reads the clock (after waiting for the device) at two steps only: the bare Trainer's whole harness."""

    def __init__(self, start: int, stop: int) -> None:
        self.start_step, self.stop_step, self.samples, self.steps = start, stop, 0, 0
        self.times: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps += 1
        if self.start_step < self.steps <= self.stop_step:
            self.samples += batch_size_of(batch)
        if self.steps in (self.start_step, self.stop_step):
            synchronize(pl_module.device)
            self.times.append(time.perf_counter())


def bare_trainer_samples_per_s(name: str, steps: int, device: torch.device, data_args: dict) -> float:
    model, dm = build(name, torch.device("cpu"), data_args)
    return bare_rate(model, dm, steps, device)[0]


def bare_rate(model: L.LightningModule, dm, steps: int, device: torch.device) -> tuple[float, list]:
    """(samples/s, the optimizers the module configured under this Trainer: the expert loop steps the same)."""
    clock = StepClock(WARMUP_STEPS, WARMUP_STEPS + steps)
    trainer = L.Trainer(accelerator="gpu" if device.type == "cuda" else "cpu", devices=1, max_epochs=-1,
                        max_steps=WARMUP_STEPS + steps, limit_val_batches=0, logger=False, callbacks=[clock],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        use_distributed_sampler=False)
    trainer.fit(model, dm)
    model.trainer = None  # detached, so a plain loop can step it next (its self.log is then a no-op)
    return clock.samples / (clock.times[1] - clock.times[0]), trainer.optimizers


def runner_config(name: str, profile: str, device: str, data_args: dict, size: str = "classic",
                  precision: Precision = "32-true", time_limit_s: float = 1800) -> RunConfig:
    """The run the runner would make of `name` (its size's data and batch), or on synthetic `data_args`."""
    preset = lightning_modules.get(name).bench.size(size)
    return RunConfig(model=name, datamodule="synthetic" if data_args else preset.datamodule,
                     batch_size=data_args.get("batch_size", preset.default_batch_size(profile)), device=device,
                     size=size, precision=precision, profile=profile, time_limit_s=time_limit_s, wandb="disabled",
                     data_args={k: v for k, v in data_args.items() if k != "batch_size"})


@dataclass
class Overhead:
    """Throughputs (samples/s) of the three measurements, one entry per alternating repeat."""

    runner: list[float | None] = field(default_factory=list)
    device_cost: list[float | None] = field(default_factory=list)
    bare: list[float | None] = field(default_factory=list)
    expert: list[float | None] = field(default_factory=list)
    expert_device_cost: list[float | None] = field(default_factory=list)  # the expert's steps by the same profiler

    def runner_over_bare(self) -> float | None:
        return ratio(self.runner, self.bare)

    def device_over_expert(self) -> float | None:
        """The runner's device cost over the expert loop's, both the device's busy time read by the profiler (a busy
        time over a wall-clock rate would be >= 1 by construction)."""
        return ratio(self.device_cost, self.expert_device_cost)

    def runner_over_expert(self) -> float | None:
        return ratio(self.runner, self.expert)

    def spread(self) -> float | None:
        """(max - min) / median of the runner's repeats."""
        return median_and_spread([rate for rate in self.runner if rate])[1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ratio(a: Sequence[float | None], b: Sequence[float | None]) -> float | None:
    """Median of a over median of b, ignoring missing entries; None when either side has none."""
    top, bottom = [x for x in a if x], [x for x in b if x]
    return statistics.median(top) / statistics.median(bottom) if top and bottom else None


def alternate(config: RunConfig, repeats: int, out_dir: Path) -> Overhead:
    """The runner's speed window, a bare Trainer and the expert loop alternating in this process on one module and
    datamodule: no process-to-process difference (allocator, page placement, a shared machine's mood), which on a
    small shared CPU is larger than the harness's cost. The module keeps training across them; its step costs the
    same."""
    from bench.run import session

    built = session.build(config)
    module, _ = session.apply_settings(config, built)
    device = torch.device(config.device)
    measured = Overhead()
    for _ in range(repeats):
        window = session.speed_window_fit(config, built, module, out_dir)
        measured.runner.append(window.train_samples_per_s)
        measured.device_cost.append(window.device_samples_per_s)
        steps = max(window.timed_steps, 20)
        bare, optimizers = bare_rate(module, built.datamodule, steps, device)
        measured.bare.append(bare)
        expert: float | None
        expert_device: float | None
        try:
            expert, expert_device = expert_rate(module, built.datamodule, steps, device, optimizers)
        except NeedsTrainer:
            expert = expert_device = None
        measured.expert.append(expert)
        measured.expert_device_cost.append(expert_device)
    return measured


def probe(config: RunConfig, sweep_dir: Path, repeats: int = 3) -> dict[str, Any]:
    """In a run's child, in place of training: the alternating measurement (the row's `probe`, in no CSV)."""
    return alternate(config, repeats, sweep_dir).to_dict()
