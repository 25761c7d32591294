"""Benchmark: how far apart one process's speed windows are, the runner's against a plain PyTorch loop's.

    python -m benchmarks.window_spread [--models mlp,cnn,resnet] [--profile quick] [--device cpu] [--rounds 2]
                                       [--wandb disabled|offline]

Per model, in one process on one module and datamodule (its profile's data and batch), alternating over the rounds:
  runner   the speed window as a row's comes about: the quality fit's Trainer (validation every epoch, its epoch
           ends) with the quality run's callbacks (divergence watch, the speed window, the progress file, the
           energy meter; with --wandb offline also the run's W&B logger and step history), stopped once the
           window has its timed steps; its sub-windows' samples/s;
  plain    a plain PyTorch loop (bench/run/overhead.py's expert loop: forward, loss, backward, the optimizers the
           module configured under that Trainer) over the same number of WINDOW_STEPS-step windows.
Printed per model and side: the windows' lengths in steps, their spread (max - min) / median (the row's
`train_samples_per_s_spread`), the median, and the garbage collections that ran inside the runner's windows. The
bar (issue 31): runner spread <= 1.2 x plain spread. The plain loop's figure is the machine's own.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.run import session, wandb_run
from bench.run.measure import energy, quality, speed
from bench.run.overhead import NeedsTrainer, expert_windows, runner_config
from bench.run.progress import ProgressFile


class GcCount:
    """Collections (by generation) that ran while a window's clock ran."""

    def __init__(self, window: speed.SpeedWindow):
        self.window, self.counts, self._timing = window, [0, 0, 0], False
        window.listeners.append(self)

    def opened(self) -> None:
        self._timing = True

    def closed(self) -> None:
        self._timing = False

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start" and self._timing:
            self.counts[info["generation"]] += 1


def runner_windows(config, built, module, out_dir: Path) -> tuple[list[tuple[int, float]], list[int], list]:
    """((steps, samples/s) of each sub-window, gc collections inside them, the optimizers the fit configured); with
    `config.wandb` offline, the run's W&B logger and step history too, as a make-bench row has them."""
    watch = quality.QualityWatch(built.spec.metric, built.spec.metric_direction, None)  # no target: never stops
    window = speed.SpeedWindow(config.world_size, profiled=0, stop=True)  # stops the fit once timed
    meter = energy.RunEnergy(config.device, config.num_devices, config.num_nodes)
    meter.over_window(window)
    collections = GcCount(window)
    logger = wandb_run.start(config, out_dir)  # None unless config.wandb is offline
    gc.callbacks.append(collections)
    try:
        callbacks = [watch, window, ProgressFile(out_dir / "progress.json"), meter.to_target(watch)]
        callbacks += [wandb_run.history()] if logger is not None else []
        trainer = session.make_trainer(config, built, callbacks, logger, out_dir)
        trainer.fit(module, built.datamodule)
    finally:
        gc.callbacks.remove(collections)
    if logger is not None:
        logger.experiment.finish()
    module.trainer = None  # detached, so the plain loop can step it (its self.log is then a no-op)
    return [(steps, n / s) for steps, n, s in window.windows if s > 0], collections.counts, trainer.optimizers


def spread(rates: list[float]) -> float:
    return (max(rates) - min(rates)) / statistics.median(rates) if len(rates) > 1 else float("nan")


def measure(name: str, args, out_dir: Path) -> list[str]:
    config = runner_config(name, args.profile, args.device, {}).but(wandb=args.wandb)
    built = session.build(config)
    module, _ = session.apply_settings(config, built)
    device = torch.device(config.device)
    lines = []
    for round_ in range(args.rounds):
        started = time.perf_counter()
        windows, collected, optimizers = runner_windows(config, built, module, out_dir)
        rates = [rate for _, rate in windows]
        full = [rate for steps, rate in windows if steps == speed.WINDOW_STEPS]
        lengths = sorted({steps for steps, _ in windows})
        try:
            plain, _, _ = expert_windows(module, built.datamodule, speed.WINDOW_STEPS * len(windows), device,
                                         optimizers)
        except NeedsTrainer:
            plain = []
        ratio = spread(rates) / spread(plain) if plain else float("nan")
        lines.append(f"{name:8s} {round_ + 1:5d} {len(windows):7d} {str(lengths):>14s} {spread(rates):8.1%} "
                     f"{spread(full):11.1%} {spread(plain):8.1%} {ratio:6.2f} {statistics.median(rates):10.0f} "
                     f"{statistics.median(plain) if plain else float('nan'):10.0f} {str(collected):>10s} "
                     f"{time.perf_counter() - started:5.0f}")
        print(lines[-1], flush=True)
    return lines


HEADER = (f"{'model':8s} {'round':>5s} {'windows':>7s} {'lengths':>14s} {'runner':>8s} {'runner(10)':>11s} "
          f"{'plain':>8s} {'ratio':>6s} {'runner/s':>10s} {'plain/s':>10s} {'gc in win':>10s} {'s':>5s}")


def quiet() -> None:
    """Lightning's info lines and warnings off: the table is the output."""
    import logging
    import warnings

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def main() -> None:
    quiet()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mlp,cnn,resnet")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--wandb", default="disabled", choices=("disabled", "offline"),
                        help="offline: the runner's fit logs to W&B offline, as make bench's rows do")
    args = parser.parse_args()
    print("spread = (max - min) / median of the sub-windows' samples/s; runner(10): its full 10-step windows only; "
          "ratio = runner / plain (bar <= 1.2)")
    print(HEADER)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            measure(name, args, Path(tmp))


if __name__ == "__main__":
    main()
