"""synthetic: random tensors of any shape, for throughput-only runs (quality is not applicable)."""

from __future__ import annotations

from typing import Any

import torch

from datamodules import ConfigError, register
from datamodules.base import IMAGE, SEQUENCE, TensorBatches, TensorDataModule, fits_on


@register("synthetic")
class Synthetic(TensorDataModule):
    """Gaussian inputs of `shape` with uniform random labels; a 3-d shape is an image, 2-d a sequence."""

    has_quality = False

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        shape: tuple[int, ...] = (3, 224, 224),
        num_classes: int = 1000,
        num_samples: int = 512,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed)
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) not in (2, 3):
            raise ConfigError(f"synthetic: shape {self.shape} must be (C, H, W) for images or (T, F) for sequences.")
        if min(self.shape) < 1:
            raise ConfigError(f"synthetic: every size in shape {self.shape} must be at least 1.")
        if int(num_classes) < 1 or int(num_samples) < 1:
            raise ConfigError(f"synthetic: num_classes and num_samples must be at least 1; got {num_classes}, "
                              f"{num_samples}.")
        self.kind = IMAGE if len(self.shape) == 3 else SEQUENCE
        self.num_classes = num_classes
        self.num_samples = num_samples
        self.train_set = self.val_set = self.test_set = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        # Generated where the model trains (on a GPU: no host memory, no copy), unless it would not fit there.
        device = self.accelerator()
        probe = [torch.empty((self.num_samples, *self.shape), device="meta")]
        device = device if fits_on(device, probe) else torch.device("cpu")
        generator = torch.Generator(device=device).manual_seed(self.seed)
        inputs = torch.randn((self.num_samples, *self.shape), generator=generator, device=device)
        labels = torch.randint(0, self.num_classes, (self.num_samples,), generator=generator, device=device)
        self.train_set = self.val_set = self.test_set = TensorBatches(inputs, labels)

    def shape_facts(self) -> dict[str, Any]:
        return {"input_shape": self.shape, "num_classes": self.num_classes}

    def pixel_range(self) -> tuple[float, float]:
        return -3.0, 3.0
