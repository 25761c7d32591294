"""Benchmark: what the runner adds to training, per model, against a bare Lightning Trainer and an expert loop.

    python -m benchmarks.overhead [--models cnn,resnet] [--device cpu|cuda] [--profile quick] [--repeats 3]
                                  [--same-process]

Three measurements of the same module, datamodule and batch size, each in a fresh process (so none inherits
another's allocator or thread state), alternating over the repeats; with --same-process, alternating in one
process on one module instead (the runner's own speed-window fit in place of a whole run), which removes the
process-to-process spread that on a small shared CPU is larger than the harness's cost:
  runner   a `dnnbench` run: its Trainer-loop throughput (train_samples_per_s) and its model cost on the device
           (device_samples_per_s, from the profiler's kernel/op times);
  bare     a Lightning Trainer with no logger and no callbacks of ours, on the same batches (on a GPU the
           datamodule's device-resident ones), timed over the same number of steps after the same warm-up;
  expert   a plain PyTorch loop: forward, loss, backward, AdamW step (manual-optimization modules step their own
           optimizers) on batches already on the device, the host waiting only at the ends of 10-step windows.
Printed ratios (medians of the repeats): runner train / bare (the harness's own cost: bar >= 0.95),
runner device / expert (the model-cost measure: bar >= 0.95) and runner train / expert (on a CPU the bar is
>= 0.95 for cnn and resnet; on a GPU, for resnet on synthetic 3x224x224 at batch 256, device-bound).
A module whose step needs the Trainer itself (dbn: the epoch decides which RBM trains) has no expert loop (n/a).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

import datamodules
import lightning_modules
from bench.config import RunConfig
from bench.launch import run_child
from bench.measure.memory import keep_freed_host_memory
from bench.measure.speed import WARMUP_STEPS, WINDOW_STEPS
from bench.measure.steps import batch_size_of, synchronize
from datamodules.base import DeviceBatches, TensorDataModule

NEEDS_TRAINER_EXIT = 3  # exit code of an --expert child whose module cannot step without a Trainer


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


def plain_step(model: L.LightningModule):
    """One plain training step of `model`: its training_step, then backward and step unless it does its own."""
    if model.automatic_optimization:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step(batch, batch_idx):
            loss = model.training_step(batch, batch_idx)  # self.log is a no-op without a Trainer
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step
    try:
        optimizers = model.configure_optimizers()
    except RuntimeError as exc:  # "... is not attached to a `Trainer`"
        raise NeedsTrainer(str(exc)) from exc
    # Manual optimization: hand the module its optimizers and a bare backward in place of the Trainer's.
    model.optimizers = lambda: optimizers
    model.manual_backward = lambda loss: loss.backward()
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
    return expert_rate(model, dm, steps, device)


def expert_rate(model: L.LightningModule, dm, steps: int, device: torch.device) -> float:
    model.to(device)  # after a Lightning fit, its teardown left the module on the CPU
    if hasattr(dm, "policy"):
        dm.policy = model.act  # the DQN's experience stream acts with the model being trained
    step = plain_step(model.train())
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
    return statistics.median(rates)


class StepClock(L.Callback):
    """Reads the clock (after waiting for the device) at two steps only: the bare Trainer's whole harness."""

    def __init__(self, start: int, stop: int) -> None:
        self.start_step, self.stop_step, self.times, self.samples, self.steps = start, stop, [], 0, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps += 1
        if self.start_step < self.steps <= self.stop_step:
            self.samples += batch_size_of(batch)
        if self.steps in (self.start_step, self.stop_step):
            synchronize(pl_module.device)
            self.times.append(time.perf_counter())


def bare_trainer_samples_per_s(name: str, steps: int, device: torch.device, data_args: dict) -> float:
    model, dm = build(name, torch.device("cpu"), data_args)
    return bare_rate(model, dm, steps, device)


def bare_rate(model: L.LightningModule, dm, steps: int, device: torch.device) -> float:
    clock = StepClock(WARMUP_STEPS, WARMUP_STEPS + steps)
    trainer = L.Trainer(accelerator="gpu" if device.type == "cuda" else "cpu", devices=1, max_epochs=-1,
                        max_steps=WARMUP_STEPS + steps, limit_val_batches=0, logger=False, callbacks=[clock],
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        use_distributed_sampler=False)
    trainer.fit(model, dm)
    model.trainer = None  # detached, so a plain loop can step it next (its self.log is then a no-op)
    return clock.samples / (clock.times[1] - clock.times[0])


def runner_config(name: str, profile: str, device: str, data_args: dict) -> RunConfig:
    spec = lightning_modules.get(name).bench
    return RunConfig(model=name, datamodule="synthetic" if data_args else spec.classic.datamodule,
                     batch_size=data_args.get("batch_size", spec.classic.batch_size), device=device,
                     profile=profile, time_limit_s=1800,
                     data_args={k: v for k, v in data_args.items() if k != "batch_size"})


def runner_row(name: str, profile: str, device: str, data_args: dict, out_dir: Path) -> dict:
    row = run_child(runner_config(name, profile, device, data_args), out_dir)
    if row["status"] != "ok":
        raise RuntimeError(f"runner status {row['status']}: {row['message']}")
    return row


def in_fresh_process(mode: str, name: str, steps: int, device: str, data_args: dict) -> float | None:
    command = [sys.executable, "-m", "benchmarks.overhead", f"--{mode}", name, "--steps", str(steps), "--device",
               device, "--data-args", json.dumps(data_args)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if result.returncode == NEEDS_TRAINER_EXIT:
        return None
    if result.returncode != 0:
        raise RuntimeError(f"{mode} for {name} failed: {result.stderr.strip().splitlines()[-1:]}")
    return float(result.stdout.strip().splitlines()[-1])


def ratio(a: list[float], b: list[float | None]) -> str:
    b = [x for x in b if x]
    return f"{statistics.median(a) / statistics.median(b):6.3f}" if a and b else "   n/a"


def measure_model(name: str, args, out_dir: Path) -> str:
    runner, device_cost, bare, expert = [], [], [], []
    for _ in range(args.repeats):
        row = runner_row(name, args.profile, args.device, args.data, out_dir)
        runner.append(float(row["train_samples_per_s"]))
        device_cost.append(float(row["device_samples_per_s"] or "nan"))
        steps = max(int(float(row["timed_steps"] or 0)), 20)
        bare.append(in_fresh_process("bare", name, steps, args.device, args.data))
        expert.append(in_fresh_process("expert", name, steps, args.device, args.data))
    return table_line(name, runner, device_cost, bare, expert)


def measure_in_one_process(name: str, args, out_dir: Path) -> str:
    """The runner's speed window (bench.session.speed_window_fit, what a row's speed columns come from), a bare
    Trainer and the expert loop alternating in this process on one module and datamodule: no process-to-process
    difference (allocator, page placement, a shared machine's mood), which on a small shared CPU is larger than
    the harness's cost. The module keeps training across them; its step costs the same."""
    from bench import session

    config = runner_config(name, args.profile, args.device, args.data)
    built = session.build(config)
    module = session.apply_settings(config, built)
    device = torch.device(args.device)
    runner, device_cost, bare, expert = [], [], [], []
    for _ in range(args.repeats):
        window = session.speed_window_fit(config, built, module, out_dir)
        runner.append(window.train_samples_per_s)
        device_cost.append(window.device_samples_per_s or float("nan"))
        steps = max(window.timed_steps, 20)
        bare.append(bare_rate(module, built.datamodule, steps, device))
        try:
            expert.append(expert_rate(module, built.datamodule, steps, device))
        except NeedsTrainer:
            expert.append(None)
    return table_line(name, runner, device_cost, bare, expert)


def table_line(name: str, runner: list[float], device_cost: list[float], bare: list[float],
               expert: list[float | None]) -> str:
    # Each repeat's runner / expert ratio: on a shared CPU the spread between fresh processes is often larger than
    # the harness's cost, and the range shows it.
    paired = sorted(r / e for r, e in zip(runner, expert) if e)
    spread = f"  {paired[0]:.3f}-{paired[-1]:.3f}" if paired else ""
    return (f"{name:12s} {statistics.median(runner):10.1f} {statistics.median(device_cost):10.1f} "
            f"{statistics.median(bare):10.1f} " + (f"{statistics.median([e for e in expert if e]):10.1f}"
                                                    if any(expert) else f"{'n/a':>10s}")
            + f"  {ratio(runner, bare)} {ratio(device_cost, expert)} {ratio(runner, expert)}{spread}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="all")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--profile", default="quick", help="runner profile")
    parser.add_argument("--repeats", type=int, default=1, help="alternate the three measurements this many times")
    parser.add_argument("--data-args", default="{}", help="JSON: synthetic data instead of the default, e.g. "
                        '\'{"shape": [3, 224, 224], "num_classes": 1000, "num_samples": 2048, "batch_size": 256}\'')
    parser.add_argument("--same-process", action="store_true",
                        help="alternate the three in this one process on one module instead of fresh processes")
    parser.add_argument("--steps", type=int, default=100, help=argparse.SUPPRESS)
    for mode in ("bare", "expert"):  # child modes: print samples/s
        parser.add_argument(f"--{mode}", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data = json.loads(args.data_args)
    device = torch.device(args.device)
    keep_freed_host_memory()  # as every dnnbench run does: the three measurements share the host allocator
    if args.bare or args.expert:
        try:
            measure = bare_trainer_samples_per_s if args.bare else expert_samples_per_s
            print(measure(args.bare or args.expert, args.steps, device, args.data))
        except NeedsTrainer as exc:
            print(exc)
            sys.exit(NEEDS_TRAINER_EXIT)
        return
    names = lightning_modules.names() if args.models == "all" else args.models.split(",")
    where = "in this process, one module" if args.same_process else "fresh processes"
    print(f"device {args.device}, profile {args.profile}, {args.repeats} alternating repeat(s) ({where}), medians; "
          "samples/s")
    print(f"{'model':12s} {'runner':>10s} {'run.device':>10s} {'bare':>10s} {'expert':>10s}  "
          f"{'run/bare':>6s} {'dev/exp':>6s} {'run/exp':>6s}  run/exp of each repeat (min-max)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            try:
                measure = measure_in_one_process if args.same_process else measure_model
                print(measure(name, args, Path(tmp)), flush=True)
            except RuntimeError as exc:
                print(f"{name:12s} failed: {exc}", flush=True)


if __name__ == "__main__":
    main()
