"""Benchmark: per-epoch validation curves over seeds, to choose a model's recipe and its caps per profile.

    python -m benchmarks.quality_curves mlp --profile quick --seeds 0-4 [--precision bf16-mixed] [--epochs 8]
        [--set lr=3e-3 ...] [--data num_envs=4 ...] [--threads 1]

Builds each seed's model and data as a run does (the classic size's datamodule, arguments and batch size, the
model's overrides), trains with validation every epoch under the profile's cap and stops at the first validation
that reaches the target (as quick and standard runs do). One line per seed: the epoch that reached the target (or
none), the test metric there and the validation curve. Quality under a fixed seed does not depend on machine load,
so this may run beside other work (`--threads 1`); it prints no timings.
"""

from __future__ import annotations

import argparse
import ast
import logging
import warnings

import lightning as L
import torch

import datamodules
import lightning_modules
from bench.core.choices import Precision


class Curve(L.Callback):
    """Collects val/<metric> at each validation; stops training at the first value that reaches the target."""

    def __init__(self, metric: str, direction: str, target: float | None) -> None:
        self.key, self.direction, self.target = f"val/{metric}", direction, target
        self.values: list[float] = []
        self.reached_epoch: int | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.key)
        if value is None or trainer.sanity_checking:
            return
        self.values.append(float(value))
        if self.target is None or self.reached_epoch is not None:
            return
        if (value >= self.target) if self.direction == "max" else (value <= self.target):
            self.reached_epoch = trainer.current_epoch + 1
            trainer.should_stop = True


def keyword_values(items: list[str] | None) -> dict:
    """`key=value` strings -> {key: Python literal (or the string itself)}."""
    out = {}
    for item in items or []:
        key, _, text = item.partition("=")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


def one_seed(name: str, seed: int, epochs: int, precision: Precision, model_args: dict, data_args: dict) -> str:
    model_class = lightning_modules.get(name)
    spec, preset = model_class.bench, model_class.bench.classic
    L.seed_everything(seed, verbose=False)
    datamodule = datamodules.get(preset.datamodule)(batch_size=preset.batch_size, seed=seed,
                                                    **(preset.data_kwargs(preset.datamodule, "standard") | data_args))
    model = lightning_modules.build_model(model_class, datamodule, **(preset.model_overrides("standard") | model_args))
    curve = Curve(spec.metric, spec.metric_direction, preset.metric_target)
    trainer = L.Trainer(accelerator="cpu", devices=1, precision=precision, max_epochs=epochs, logger=False,
                        enable_checkpointing=False, num_sanity_val_steps=0, enable_model_summary=False,
                        enable_progress_bar=False, callbacks=[curve])
    trainer.fit(model, datamodule)
    tested = trainer.test(model, datamodule, verbose=False)
    test = tested[0].get(f"test/{spec.metric}") if tested else None
    return (f"{name} seed {seed} {precision} cap {epochs}: reached {preset.metric_target} at epoch "
            f"{curve.reached_epoch or '-'}; test {spec.metric} {test:.4g}; val " +
            " ".join(f"{v:.4g}" for v in curve.values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--profile", default="standard", help="whose cap (the model's epochs) to train under")
    parser.add_argument("--epochs", type=int, help="another cap")
    parser.add_argument("--seeds", default="0-4", help="first-last")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--set", nargs="*", help="model keyword overrides, key=value")
    parser.add_argument("--data", nargs="*", help="datamodule keyword overrides, key=value")
    parser.add_argument("--threads", type=int, help="torch CPU threads (1: leave the other cores to others)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    first, _, last = args.seeds.partition("-")
    epochs = args.epochs or lightning_modules.get(args.model).bench.epochs[args.profile]
    for seed in range(int(first), int(last or first) + 1):
        print(one_seed(args.model, seed, epochs, args.precision, keyword_values(args.set),
                       keyword_values(args.data)), flush=True)


if __name__ == "__main__":
    main()
