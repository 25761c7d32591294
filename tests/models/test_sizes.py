"""Sizes (classic / large), the `auto` batch size, and the efficient paths the large presets rely on.

CPU tests run each large preset shrunk in depth and width (its `smoke` shrink): a smoke run of each by default, a
whole speed window in 32-true and bf16-mixed under `-m slow`; the `gpu` tests run the real presets in 32-true,
bf16-mixed and 16-mixed.
"""

import lightning as L
import numpy as np
import pytest
import torch

import datamodules
import lightning_modules
from bench.cli import build_parser
from bench.core import config as cfg
from bench.core.config import RunConfig
from bench.core.profiles import SIZES
from bench.plan.planner import plan
from bench.results.io import flatten
from bench.run.child import run
from bench.run.measure.quality import QualityWatch
from bench.run.session import build
from lightning_modules import build_model
from tests.helpers import quiet_trainer

MODEL_NAMES = lightning_modules.names()
SPEED_WINDOW_STEPS = 110  # warm-up + timed steps of the runner's speed window


def planned(*args: str) -> list[RunConfig]:
    return plan(build_parser().parse_args(["run", "--wandb", "disabled", *args])).configs


def large_config(name: str, profile: str = "smoke", **overrides) -> RunConfig:
    (config,) = planned("--models", name, "--sizes", "large", "--profile", profile)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


class StopAfter(L.Callback):
    """Ends fit after `batches` training batches (manual-optimization models step several optimizers each)."""

    def __init__(self, batches: int) -> None:
        self.batches, self.seen = batches, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        trainer.should_stop = trainer.should_stop or self.seen >= self.batches


def train_speed_window(config: RunConfig, accelerator: str) -> StopAfter:
    """The size's model and data as the runner builds them, trained for a speed window; Diverged on NaN/inf."""
    built = build(config)
    stop = StopAfter(SPEED_WINDOW_STEPS)
    watch = QualityWatch(built.spec.metric, built.spec.metric_direction, None)
    trainer = quiet_trainer(accelerator=accelerator, precision=config.precision, max_epochs=-1, limit_val_batches=0,
                            callbacks=[stop, watch])
    trainer.fit(built.model, built.datamodule)
    assert all(torch.isfinite(p).all() for p in built.model.parameters())
    return stop


# ----------------------------------------------------------------------------------------------- the presets
RECIPE_ARGS = {"lr", "finetune_lr", "weight_decay"}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_declares_both_sizes_and_classic_is_todays_defaults(name):
    spec = lightning_modules.get(name).bench
    assert tuple(spec.sizes()) == SIZES
    classic = spec.size("classic")
    # The textbook network: the constructor's architecture; only the training recipe (issue 21's learning rates,
    # measured per seed in results/reference/cpu-2core/README.md) may differ from the defaults the large size keeps.
    assert classic is spec.classic and set(classic.model) <= RECIPE_ARGS
    assert classic.datamodule in datamodules.names() and classic.batch_size > 0 and classic.metric_target is not None
    assert classic.model_overrides("smoke") == classic.model | classic.smoke_model
    assert classic.model_overrides("quick") == classic.model


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_large_preset_builds_and_is_larger_than_classic_while_its_smoke_shrink_is_small(name):
    cls = lightning_modules.get(name)

    def parameters(size: str, profile: str, device: str) -> int:
        preset = cls.bench.size(size)
        datamodule = datamodules.get(preset.datamodule)(**preset.data_kwargs(preset.datamodule, profile))
        datamodule.shape_facts()  # loads real data, if any, outside the meta device
        with torch.device(device):  # meta: the real preset's shapes without allocating its weights
            model = build_model(cls, datamodule, **preset.model_overrides(profile))
        return sum(p.numel() for p in model.parameters())

    large = parameters("large", "quick", "meta")
    assert large > parameters("classic", "quick", "cpu")
    assert parameters("large", "smoke", "meta") < large


# ----------------------------------------------------------------------------------------------- runs at size large
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_smoke_run_at_the_large_size_is_ok(name, tmp_path):
    config = large_config(name)
    preset = lightning_modules.get(name).bench.size("large")
    assert (config.size, config.datamodule, config.batch_size) == ("large", preset.datamodule,
                                                                   preset.default_batch_size("smoke"))
    row = flatten(run(config, tmp_path))
    assert row["status"] == "ok", row["message"]
    assert row["size"] == "large" and "large" in config.label() and "large" in row["reproduce"]
    assert row["params"] > 0 and row["train_samples_per_s"] > 0


@pytest.mark.slow  # 24 x 110 steps: 4 to 15 minutes on two CPU cores, by their load (run with -m slow)
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_shrunk_large_preset_stays_finite_for_a_speed_window(name, precision):
    stop = train_speed_window(large_config(name, precision=precision), "cpu")
    assert stop.seen == SPEED_WINDOW_STEPS


@pytest.mark.slow  # 36 large speed windows: minutes (out of the 90 s GPU tier)
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_real_large_preset_stays_finite_for_a_speed_window_on_a_gpu(name, precision):
    stop = train_speed_window(large_config(name, profile="quick", precision=precision, device="cuda"), "gpu")
    assert stop.seen == SPEED_WINDOW_STEPS


@pytest.mark.slow  # 12 large presets built (out of the 90 s GPU tier)
@pytest.mark.gpu
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_optimizers_take_the_fused_path_on_a_gpu(name):
    built = build(large_config(name, device="cuda"))
    trainer = quiet_trainer(accelerator="gpu", max_steps=1, limit_val_batches=0)
    trainer.fit(built.model, built.datamodule)
    optimizers = trainer.optimizers
    assert optimizers and all(o.defaults.get("fused") for o in optimizers), [type(o) for o in optimizers]


# ----------------------------------------------------------------------------------------------- the auto batch size


@pytest.mark.slow  # a batch-size search on the large mlp (out of the 90 s GPU tier)
@pytest.mark.gpu
def test_auto_batch_size_on_a_gpu_finds_a_power_of_two_multiple_of_the_default(tmp_path):
    config = large_config("mlp", profile="quick", device="cuda", precision="bf16-mixed", batch_size_mode="auto")
    row = flatten(run(config, tmp_path))
    assert row["status"] == "ok", row["message"]
    multiple = row["batch_size"] / config.batch_size
    assert multiple >= 1 and multiple == 2 ** round(np.log2(multiple))


# ----------------------------------------------------------------------------------------------- the axis
def test_sizes_and_auto_batch_sizes_multiply_the_plan():
    configs = planned("--models", "mlp,dqn", "--sizes", "classic,large", "--batch-sizes", "auto,32")
    assert len(configs) == 8
    keys = {(c.model, c.size, c.batch_size_mode) for c in configs}
    assert ("dqn", "large", "auto") in keys and ("mlp", "classic", "fixed") in keys
    large_mlp = next(c for c in configs if c.model == "mlp" and c.size == "large" and c.batch_size_mode == "auto")
    preset = lightning_modules.get("mlp").bench.size("large")
    assert (large_mlp.datamodule, large_mlp.batch_size) == (preset.datamodule, preset.batch_size)
    assert len({cfg.identity(c.columns()) for c in configs}) == 8
    assert len({c.run_id for c in configs}) == 8
