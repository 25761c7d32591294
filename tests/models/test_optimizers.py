"""Optimizer settings by (device, precision, clipping): fused kernels only where Lightning can clip with them."""

import math

import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision

import datamodules
import lightning_modules
from lightning_modules import base


class StubTrainer:
    def __init__(self, plugin) -> None:
        self.precision_plugin, self.gradient_clip_val, self.max_epochs = plugin, None, -1
        self.estimated_stepping_batches, self.datamodule = math.inf, None


def chosen_optimizer(name: str, plugin, monkeypatch) -> torch.optim.Optimizer:
    """The optimizer `name` configures on a GPU (its parameters claimed to be there) under `plugin`."""
    monkeypatch.setattr(base, "on_gpu", lambda parameters: True)
    model = lightning_modules.build_model(lightning_modules.get(name),
                                          datamodules.get(lightning_modules.get(name).bench.classic.datamodule)())
    model._trainer = StubTrainer(plugin)
    configured = model.configure_optimizers()
    return configured["optimizer"] if isinstance(configured, dict) else configured


@pytest.mark.parametrize("name", ["rnn", "lstm", "attention", "dqn"])
def test_clipping_models_get_unfused_optimizers_under_mixed_precision(name, monkeypatch):
    amp = MixedPrecision("16-mixed", "cuda", scaler=torch.amp.GradScaler("cuda", enabled=False))
    optimizer = chosen_optimizer(name, amp, monkeypatch)
    assert not optimizer.defaults.get("fused") and optimizer.defaults.get("foreach")
    amp.clip_gradients(optimizer, clip_val=1.0)  # Lightning's AMP plugin accepts it (it refuses fused ones)
    assert chosen_optimizer(name, Precision(), monkeypatch).defaults.get("fused")  # 32-true: one fused kernel


def test_lightnings_amp_plugin_refuses_to_clip_a_fused_optimizer():
    """Why: the refusal the settings above avoid (torch's fused Adam/AdamW unscale inside their step)."""
    amp = MixedPrecision("16-mixed", "cuda", scaler=torch.amp.GradScaler("cuda", enabled=False))
    fused = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], fused=True)
    with pytest.raises(RuntimeError, match="fused"):
        amp.clip_gradients(fused, clip_val=1.0)


@pytest.mark.parametrize("name", ["cnn", "gan"])
def test_models_that_do_not_clip_keep_fused_optimizers_in_mixed_precision(name, monkeypatch):
    amp = MixedPrecision("16-mixed", "cuda", scaler=torch.amp.GradScaler("cuda", enabled=False))
    optimizers = chosen_optimizer(name, amp, monkeypatch)
    for optimizer in optimizers if isinstance(optimizers, list) else [optimizers]:
        assert optimizer.defaults.get("fused")
