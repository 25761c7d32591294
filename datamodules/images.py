"""Image classification data held in memory: the shared base for mnist5k, MNIST, Fashion-MNIST and CIFAR-10."""

from __future__ import annotations

from typing import Any

import torch

from datamodules.base import IMAGE, TensorBatches, TensorDataModule, stratified_split


class ImageDataModule(TensorDataModule):
    """Images as float (N, C, H, W) tensors with integer labels; subclasses load `_load_raw`."""

    kind = IMAGE
    num_classes: int = 10
    # Per-channel mean and std of the training images (for `normalize=True`).
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        normalize: bool = True,
        val_size: int = 5000,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed)
        self.normalize = normalize
        self.val_size = val_size
        self._prepared = False

    def _load_raw(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(train_images uint8 (N, C, H, W), train_labels, test_images, test_labels)."""
        raise NotImplementedError

    def _to_float(self, images: torch.Tensor) -> torch.Tensor:
        # uint8 [0, 255] -> float [0, 1]; normalised to zero mean / unit std per channel when asked.
        x = images.float().div_(255.0)
        if self.normalize:
            mean = torch.tensor(self.mean).view(1, -1, 1, 1)
            std = torch.tensor(self.std).view(1, -1, 1, 1)
            x = (x - mean) / std
        return x

    def _split_train_val(self, images, labels) -> tuple[torch.Tensor, torch.Tensor]:
        """Stratified hold-out of `val_size` training images for validation."""
        train_size = len(labels) - self.val_size
        return stratified_split(labels, (train_size, self.val_size), self.seed)

    def setup(self, stage: str | None = None) -> None:
        if self._prepared:
            return
        train_x, train_y, test_x, test_y = self._load_raw()
        train_idx, val_idx = self._split_train_val(train_x, train_y)
        train_x = self._to_float(train_x)
        self.train_set = TensorBatches(train_x[train_idx], train_y[train_idx])
        self.val_set = TensorBatches(train_x[val_idx], train_y[val_idx])
        self.test_set = TensorBatches(self._to_float(test_x), test_y)
        self.input_shape = tuple(train_x.shape[1:])
        self._prepared = True

    def shape_facts(self) -> dict[str, Any]:
        self.setup()
        return {"input_shape": self.input_shape, "num_classes": self.num_classes}

    def pixel_range(self) -> tuple[float, float]:
        """The (min, max) a pixel can take after scaling, so generators can match it."""
        if not self.normalize:
            return 0.0, 1.0
        return (min((0 - m) / s for m, s in zip(self.mean, self.std)),
                max((1 - m) / s for m, s in zip(self.mean, self.std)))
