"""Sizes (classic / large), the `auto` batch size, and the efficient paths the large presets rely on.

CPU tests run each large preset shrunk in depth and width (its `smoke` shrink): a smoke run of each by default, a
whole speed window in 32-true and bf16-mixed under `-m slow`; the `gpu` tests run the real presets in 32-true,
bf16-mixed and 16-mixed.
"""

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import datamodules
import lightning_modules
from bench.cli import build_parser
from bench.core import config as cfg
from bench.core.config import RunConfig
from bench.core.profiles import SIZES
from bench.plan.planner import plan
from bench.results.io import load_results
from bench.run.child import run
from bench.run.measure import batch_size
from bench.run.measure.quality import QualityWatch
from bench.run.session import build
from lightning_modules import build_model
from tests.helpers import quiet_trainer
from tests.results_fixtures import make_row

MODEL_NAMES = lightning_modules.names()
FAKE = "tests.fake_models:FakeNet"
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
    row = run(config, tmp_path)
    assert row["status"] == "ok", row["message"]
    assert row["size"] == "large" and "large" in config.label() and "large" in row["reproduce"]
    assert row["params"] > 0 and row["train_samples_per_s"] > 0


@pytest.mark.slow  # 24 x 110 steps: 4 to 15 minutes on two CPU cores, by their load (run with -m slow)
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_shrunk_large_preset_stays_finite_for_a_speed_window(name, precision):
    stop = train_speed_window(large_config(name, precision=precision), "cpu")
    assert stop.seen == SPEED_WINDOW_STEPS


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_real_large_preset_stays_finite_for_a_speed_window_on_a_gpu(name, precision):
    stop = train_speed_window(large_config(name, profile="quick", precision=precision, device="cuda"), "gpu")
    assert stop.seen == SPEED_WINDOW_STEPS


@pytest.mark.gpu
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_optimizers_take_the_fused_path_on_a_gpu(name):
    built = build(large_config(name, device="cuda"))
    trainer = quiet_trainer(accelerator="gpu", max_steps=1, limit_val_batches=0)
    trainer.fit(built.model, built.datamodule)
    optimizers = trainer.optimizers
    assert optimizers and all(o.defaults.get("fused") for o in optimizers), [type(o) for o in optimizers]


# ----------------------------------------------------------------------------------------------- the auto batch size
def fake_auto(**model_args) -> RunConfig:
    return RunConfig(model=FAKE, datamodule="synthetic", batch_size=16, batch_size_mode="auto", profile="smoke",
                     model_args=model_args, data_args={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 1024})


def test_auto_batch_size_searches_powers_of_two_and_records_the_batch_it_found(tmp_path):
    row = run(fake_auto(), tmp_path)
    assert row["status"] == "ok", row["message"]
    # No out-of-memory error on a CPU: the search runs to its CPU cap.
    assert row["batch_size"] == 16 * 2**batch_size.CPU_DOUBLINGS and row["batch_size_mode"] == "auto"
    assert "found by --batch-sizes auto" in row["message"]
    assert "--batch-sizes auto" in row["reproduce"]
    assert cfg.identity(row) == cfg.identity(fake_auto().columns())  # whichever batch it found: one config
    assert "bs=auto" in cfg.label(row)
    assert not list(tmp_path.glob(".scale_batch_size_*.ckpt"))  # the finder's checkpoint is cleaned up


def test_auto_batch_size_keeps_the_last_batch_before_an_out_of_memory_error(tmp_path):
    row = run(fake_auto(oom_above=40), tmp_path)  # 16 and 32 fit, 64 runs out of memory
    assert row["status"] == "ok", row["message"]  # the measured fit itself ran at the batch found
    assert row["batch_size"] == 32


def test_an_out_of_memory_error_at_a_fixed_batch_stays_an_oom_row(tmp_path):
    config = fake_auto(oom_above=40)
    config.batch_size, config.batch_size_mode = 64, "fixed"
    row = run(config, tmp_path)
    assert row["status"] == "oom" and row["batch_size"] == 64 and row["batch_size_mode"] == "fixed"


@pytest.mark.gpu
def test_auto_batch_size_on_a_gpu_finds_a_power_of_two_multiple_of_the_default(tmp_path):
    config = large_config("mlp", profile="quick", device="cuda", precision="bf16-mixed", batch_size_mode="auto")
    row = run(config, tmp_path)
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


def test_a_results_file_from_before_the_size_axis_reads_as_classic_fixed(tmp_path):
    rows = pd.DataFrame([make_row(), make_row(batch_size=256)]).drop(columns=["size", "batch_size_mode"])
    rows.to_csv(tmp_path / "old.csv", index=False)
    frame = load_results(tmp_path / "old.csv")
    assert set(frame["size"]) == {"classic"} and set(frame["batch_size_mode"]) == {"fixed"}
    # The same config as a row written today at the classic size with a fixed batch.
    assert frame["config_id"][0] == cfg.identity(make_row() | {"size": "classic", "batch_size_mode": "fixed"})
    assert "classic" not in frame["config_label"][0]  # labels name the size only when it is not classic


# ----------------------------------------------------------------------------------------------- efficient paths
def test_the_transformer_attends_through_scaled_dot_product_attention_with_a_causal_flag(monkeypatch):
    calls = []
    sdpa = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[5] if len(args) > 5 else kwargs.get("is_causal", False))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    model = lightning_modules.get("transformer")(d_model=16, heads=2, layers=1, ff=32, norm_first=True)
    src = torch.randint(0, 10, (4, 8))
    model.training_step((src, src.flip(-1)), 0).backward()
    # One encoder self-attention, one decoder self-attention (causal) and one cross-attention per layer pair.
    assert sorted(calls) == [False, False, True]


def test_vectorised_cartpole_steps_every_environment_and_keeps_each_final_observation():
    dm = datamodules.get("cartpole")(num_envs=4, warmup_steps=400, seed=0)
    dm.setup()
    assert len(dm.buffer) == 400 and dm.env_steps == 400
    dm.act()  # no policy attached: random actions, one per environment
    assert len(dm.buffer) == 404
    terminal = dm.buffer.dones[: len(dm.buffer)] == 1
    assert terminal.any() and len(dm.episode_returns) == terminal.sum()  # random play ends by falling, not by time
    # A terminal transition stores the observation that ended the episode, not the next episode's reset.
    limits = dm.make_env().unwrapped
    x, angle = dm.buffer.next_obs[: len(dm.buffer)][terminal, 0], dm.buffer.next_obs[: len(dm.buffer)][terminal, 2]
    assert ((np.abs(x) > limits.x_threshold) | (np.abs(angle) > limits.theta_threshold_radians)).all()


def test_the_auto_search_names_the_limit_that_stopped_it():
    assert batch_size.doublings_allowed(16, on_gpu=True) == (8, "the search stops at 256x the default")
    doublings, limit = batch_size.doublings_allowed(256, on_gpu=True)  # 256 x 32 = 8192: Lightning's own cap
    assert doublings == 5 and "8192" in limit
    assert batch_size.doublings_allowed(64, on_gpu=False)[0] == batch_size.CPU_DOUBLINGS
    assert batch_size.cap_at_split(128, 64, samples=100) == 64  # a batch larger than the data: the largest below
    assert batch_size.cap_at_split(64, 64, samples=100) == 64 and batch_size.cap_at_split(256, 64, None) == 256


def test_auto_batch_size_is_capped_at_the_training_split(tmp_path):
    config = fake_auto()
    config.data_args = {**config.data_args, "num_samples": 40}  # 16 and 32 fit the split, 64 would be all of it
    row = run(config, tmp_path)
    assert row["status"] == "ok", row["message"]
    assert row["batch_size"] == 32 and "stopped by the training split's 40 samples" in row["message"]


def test_device_resident_batches_are_sized_for_lightnings_finder():
    from datamodules.base import DeviceBatches

    batches = DeviceBatches((torch.zeros(40, 2), torch.zeros(40)), 16, shuffle=False, seed=0)
    assert len(batches.dataset) == 40
