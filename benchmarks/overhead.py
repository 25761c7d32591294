"""Benchmark: train throughput measured by the runner vs a plain PyTorch loop on the same model and data.

    python -m benchmarks.overhead [--models cnn,resnet] [--steps 60]

The plain loop does what the LightningModule's training_step does (forward, loss, backward, optimizer step)
with the same datamodule batches, timed the same way (median of 10-step windows after 5 warm-up steps, data
fetch included). Ratio = runner / plain; the bar is >= 0.95 for cnn and resnet.

The plain loop steps AdamW (the runner uses each model's configure_optimizers, whose schedules need a Trainer;
the optimizer's cost is the same). Models with manual optimization step their own optimizers inside
training_step: the plain loop hands them the optimizers from configure_optimizers and a bare backward (gan).
A module whose step needs the Trainer itself (dbn: the epoch decides which RBM trains) is reported n/a.
"""

from __future__ import annotations

import argparse
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
from bench import stats
from bench.config import RunConfig
from bench.launch import run_child
from bench.measure.speed import WARMUP_STEPS, WINDOW_STEPS, batch_size_of


def plain_loop_samples_per_s(name: str, steps: int, seed: int = 0) -> float:
    cls = lightning_modules.get(name)
    spec = cls.bench
    L.seed_everything(seed, verbose=False)
    dm = datamodules.get(spec.default_datamodule)(batch_size=spec.default_batch_size, seed=seed,
                                                  **spec.datamodule_kwargs)
    dm.setup("fit")
    model = lightning_modules.build_model(cls, dm)
    if hasattr(dm, "policy"):
        dm.policy = model.act  # the DQN's experience stream acts with the model being trained
    step = plain_step(model)
    model.train()
    times, samples = [], []
    last = time.perf_counter()
    done = 0
    while done < steps:
        for batch_idx, batch in enumerate(dm.train_dataloader()):
            step(batch, batch_idx)
            now = time.perf_counter()
            times.append(now - last)
            samples.append(batch_size_of(batch))
            last = now
            done += 1
            if done >= steps:
                break
    return statistics.median(stats.windowed_rates(samples[WARMUP_STEPS:], times[WARMUP_STEPS:], WINDOW_STEPS))


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


class NeedsTrainer(Exception):
    """The module's training step cannot run without a Trainer, so there is no plain loop to compare with."""


NEEDS_TRAINER_EXIT = 3  # exit code of the --plain child for NeedsTrainer


def runner_run(name: str, profile: str, out_dir: Path) -> tuple[float, int] | None:
    """(train samples/s, steps) of one runner child process at the model's defaults."""
    spec = lightning_modules.get(name).bench
    config = RunConfig(model=name, datamodule=spec.default_datamodule, batch_size=spec.default_batch_size,
                       profile=profile, time_limit_s=1800)
    row = run_child(config, out_dir)
    if row["status"] != "ok":
        print(f"  {name}: runner status {row['status']}: {row['message']}")
        return None
    return float(row["train_samples_per_s"]), int(row["steps"])


def plain_run(name: str, steps: int) -> float:
    """The plain loop in a fresh process too, so neither side inherits the other's allocator or thread state."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.overhead", "--plain", name, "--steps", str(steps)],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if result.returncode == NEEDS_TRAINER_EXIT:
        raise NeedsTrainer(result.stdout.strip())
    if result.returncode != 0:
        raise RuntimeError(f"plain loop for {name} failed: {result.stderr.strip().splitlines()[-1:]}")
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="all")
    parser.add_argument("--profile", default="quick", help="runner profile (standard gives more timed windows)")
    parser.add_argument("--repeats", type=int, default=1, help="alternate runner and plain runs this many times")
    parser.add_argument("--steps", type=int, default=60, help=argparse.SUPPRESS)
    parser.add_argument("--plain", metavar="MODEL", help=argparse.SUPPRESS)  # child mode: print plain samples/s
    args = parser.parse_args()
    if args.plain:
        try:
            print(plain_loop_samples_per_s(args.plain, args.steps))
        except NeedsTrainer as exc:
            print(exc)
            sys.exit(NEEDS_TRAINER_EXIT)
        return
    names = lightning_modules.names() if args.models == "all" else args.models.split(",")
    print(f"profile {args.profile}, {args.repeats} alternating repeat(s); plain loop times as many steps as the "
          "runner trained. Medians of the repeats:")
    print(f"{'model':12s} {'runner/s':>10s} {'plain/s':>10s} {'ratio':>6s}  ratios per repeat")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            runner, plain = [], []
            try:
                for _ in range(args.repeats):
                    measured = runner_run(name, args.profile, Path(tmp))
                    if measured is None:
                        break
                    runner.append(measured[0])
                    plain.append(plain_run(name, max(measured[1], 30)))
            except NeedsTrainer as exc:
                print(f"{name:12s} {'':>10s} {'':>10s}    n/a  (its step needs a Trainer: {exc})", flush=True)
                continue
            if not runner:
                print(f"{name:12s} {'':>10s} {'':>10s}   fail", flush=True)
                continue
            each = " ".join(f"{r / p:.3f}" for r, p in zip(runner, plain))
            ratio = statistics.median(runner) / statistics.median(plain)
            print(f"{name:12s} {statistics.median(runner):10.1f} {statistics.median(plain):10.1f} {ratio:6.3f}  {each}",
                  flush=True)


if __name__ == "__main__":
    main()
