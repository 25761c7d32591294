"""The model contract: each registered LightningModule carries a `bench` spec and `example_input`."""

from __future__ import annotations

import hashlib
import inspect
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics

from lightning_modules.sizes import SizePreset
from registries import ConfigError


@dataclass(frozen=True)
class BenchSpec:
    """Per-model benchmark defaults, declared next to the model (TorchBench style)."""

    task: str  # classification | seq2seq | generation | reconstruction | reinforcement_learning
    accepts: tuple[str, ...]  # datamodule kinds this model can take: image | sequence | seq2seq | rl
    metric: str  # logged as f"val/{metric}" each epoch and f"test/{metric}" at the end
    metric_direction: str  # "max" or "min": which way is better
    # The textbook network on its default data: its datamodule and arguments, batch size, quality target (time-to-
    # target) and the constructor overrides that shrink it for tests and the `smoke` profile.
    classic: SizePreset
    # Epochs per profile, naming every profile the runner has (smoke, quick, standard, full: planning checks). In
    # quick and standard a CAP: the quality run stops at the first validation where val/<metric> reaches the target,
    # else after these epochs; in smoke and full the fixed schedule.
    # Schedules sized on the whole fit (adamw_one_cycle) span the cap. `dnnbench list` shows them.
    epochs: dict[str, int] = field(default_factory=lambda: {"smoke": 1, "quick": 1, "standard": 10, "full": 20})
    # Which way is better for each other test metric the model logs (compare gates those); unlisted: not gated.
    other_metric_directions: dict[str, str] = field(default_factory=lambda: {"loss": "min"})
    large: SizePreset | None = None  # the size that is compute-bound on an H100/H200-class GPU

    def __post_init__(self) -> None:
        assert self.metric_direction in ("max", "min"), self.metric_direction

    def sizes(self) -> dict[str, SizePreset]:
        """Every size this model declares."""
        return {"classic": self.classic} | ({"large": self.large} if self.large is not None else {})

    def size(self, name: str) -> SizePreset:
        presets = self.sizes()
        if name not in presets:
            raise ConfigError(f"this model declares no {name!r} size (it has {', '.join(presets)})")
        return presets[name]


def check_compatible(model_class: type, datamodule: Any) -> None:
    """Raise ConfigError before training when the model cannot take this kind of data."""
    spec: BenchSpec = model_class.bench
    kind = getattr(datamodule, "kind", None)
    if kind not in spec.accepts:
        name = getattr(model_class, "registry_name", model_class.__name__)
        data = getattr(datamodule, "registry_name", type(datamodule).__name__)
        raise ConfigError(
            f"model {name!r} takes {' or '.join(spec.accepts)} data, but datamodule {data!r} provides "
            f"{kind or 'an unknown kind of'} data. Pick a matching datamodule (default: {spec.classic.datamodule})."
        )


def build_model(model_class: Any, datamodule: Any, smoke: bool = False, **overrides: Any) -> L.LightningModule:
    """Instantiate `model_class` sized for `datamodule`: shape facts the constructor accepts are passed in; `smoke`:
    shrunk as the classic size's smoke profile shrinks it (tests)."""
    check_compatible(model_class, datamodule)
    accepted = inspect.signature(model_class.__init__).parameters
    kwargs = {k: v for k, v in datamodule.shape_facts().items() if k in accepted}
    if smoke:
        kwargs.update(model_class.bench.classic.smoke_model)
    unknown = set(overrides) - set(accepted)
    if unknown:
        raise ConfigError(f"{model_class.__name__} has no hyper-parameter(s) {sorted(unknown)}; "
                          f"it takes {sorted(p for p in accepted if p != 'self')}.")
    kwargs.update(overrides)
    return model_class(**kwargs)


class Classifier(L.LightningModule):
    """Shared supervised loop: cross-entropy on `self.net` logits, torchmetrics accuracy, AdamW.

    Subclasses build `self.net` in __init__ and call `self.save_hyperparameters()`.
    """

    def __init__(self, num_classes: int, lr: float, weight_decay: float = 0.0, grad_clip: float = 0.0) -> None:
        super().__init__()
        self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.test_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.lr, self.weight_decay, self.grad_clip = lr, weight_decay, grad_clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def example_input(self, batch_size: int) -> torch.Tensor:
        """Random inputs of the shape the model was built for (subclasses keep `input_shape` in hparams)."""
        return torch.randn(batch_size, *self.hparams.input_shape, device=self.device)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch, accuracy: torchmetrics.Metric, stage: str) -> None:
        x, y = batch
        logits = self(x)
        accuracy(logits, y)
        self.log(f"{stage}/loss", self.loss(logits, y), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, prog_bar=True)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_acc, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_acc, "test")

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        # Clipping is a model hyper-parameter (RNNs need it), not a Trainer flag the runner must know about.
        self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip or gradient_clip_val,
                            gradient_clip_algorithm=gradient_clip_algorithm or "norm")

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.lr, self.weight_decay)


def fused_on_gpu(parameters, module: L.LightningModule | None = None, clips: bool = False) -> dict[str, bool]:
    """`fused=True` for torch optimizers whose parameters all live on a GPU (one kernel for the whole step), except
    where Lightning clips their gradients under mixed precision: its AMP plugin unscales the gradients before
    clipping and refuses optimizers that unscale inside their step (the fused ones), so those get torch's for-each
    kernels. On CPU the default (for-each) path, so CPU runs stay as they were."""
    if not on_gpu(parameters):
        return {}
    if clips and module is not None and module._trainer is not None and mixed_precision(module.trainer):
        return {"foreach": True}
    return {"fused": True}


def on_gpu(parameters) -> bool:
    return all(p.is_cuda for p in parameters)


def mixed_precision(trainer: L.Trainer) -> bool:
    """Whether the trainer runs Lightning's AMP plugin (16-mixed, bf16-mixed)."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    return isinstance(trainer.precision_plugin, MixedPrecision)


def adamw_one_cycle(module: L.LightningModule, lr: float, weight_decay: float = 0.0):
    """AdamW with a one-cycle schedule over the whole fit: reaches targets in few epochs.

    The schedule's first 30 % is its warm-up (from lr / 25 up to lr), which large networks need to stay finite.
    It spans the profile's epochs, which are a cap where the run stops at its target (quick, standard): a run that
    stops there has only gone part of the way through the schedule (as stopping any schedule early does).
    """
    parameters = list(module.parameters())
    clips = bool(getattr(module, "grad_clip", 0) or module.trainer.gradient_clip_val)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay,
                                  **fused_on_gpu(parameters, module, clips))
    total = module.trainer.estimated_stepping_batches  # inf without max_epochs, -1 for unsized loaders
    if not math.isfinite(total) or total <= 0:
        return optimizer
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(int(total), 2))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def cache_dir() -> Path:
    """Where measuring instruments trained once on the data (the GAN's feature classifier) are kept between runs:
    $DNNBENCH_CACHE, else ~/.cache/dnnbench."""
    return Path(os.environ.get("DNNBENCH_CACHE") or Path.home() / ".cache" / "dnnbench")


def fingerprint(*parts: Any) -> str:
    """A short hash of tensors (their bytes, shape and dtype) and of other values (their repr)."""
    digest = hashlib.sha1()
    for part in parts:
        if torch.is_tensor(part):
            digest.update(f"{tuple(part.shape)}{part.dtype}".encode())
            digest.update(part.detach().cpu().contiguous().numpy().tobytes())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()[:16]


def load_or_train(module: torch.nn.Module, path: Path, train) -> None:
    """`module`'s weights from `path` when a run already trained them, else `train()` and keep them there.
    The cache never costs a run: an unreadable or unwritable file only means training."""
    try:
        module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return
    except Exception:  # missing, partial or from another layout: train instead
        pass
    train()
    partial = path.with_suffix(f".{os.getpid()}.tmp")  # runs in parallel may write the same file
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(module.state_dict(), partial)
        os.replace(partial, path)
    except (OSError, RuntimeError):  # torch.save reports a failed write (read-only, full) as a RuntimeError
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass
