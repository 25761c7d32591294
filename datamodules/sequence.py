"""Sequence views of image data: each image as H steps of C*W features (row-wise "sequential MNIST")."""

from __future__ import annotations

from typing import Any

import torch

from datamodules import ConfigError, get, register
from datamodules.base import IMAGE, SEQUENCE, TensorBatches, TensorDataModule


def rows_as_steps(images: torch.Tensor) -> torch.Tensor:
    # (N, C, H, W) -> (N, H, C*W): one time step per image row.
    n, c, h, w = images.shape
    return images.permute(0, 2, 1, 3).reshape(n, h, c * w).contiguous()


@register("sequence")
class SequenceView(TensorDataModule):
    """Any registered image datamodule (`source`) served as row sequences with the same labels."""

    kind = SEQUENCE

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        source: str = "mnist5k",
        **source_kwargs: Any,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed)
        self.source_name = source
        self.source = get(source)(data_dir=data_dir, batch_size=batch_size, num_workers=num_workers,
                                  seed=seed, **source_kwargs)
        if getattr(self.source, "kind", None) != IMAGE:
            raise ConfigError(f"sequence: source {source!r} is not an image datamodule.")
        self.has_quality = self.source.has_quality
        self._prepared = False

    def missing_data(self) -> str | None:
        return self.source.missing_data()

    def prepare_data(self) -> None:
        self.source.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self._prepared:
            return
        self.source.setup(stage)
        for split in ("train_set", "val_set", "test_set"):
            images, labels = self.source.split_tensors(split.removesuffix("_set"))
            setattr(self, split, TensorBatches(rows_as_steps(images), labels))
        self._prepared = True

    def shape_facts(self) -> dict[str, Any]:
        facts = dict(self.source.shape_facts())
        c, h, w = facts["input_shape"]
        facts["input_shape"] = (h, c * w)  # (T, F)
        return facts


def _view_of(source_name: str) -> type:
    class View(SequenceView):
        __doc__ = f"{source_name} images as row sequences."

        def __init__(self, data_dir: str = "data", batch_size: int = 128, num_workers: int = 0,
                     seed: int = 0, **source_kwargs: Any) -> None:
            super().__init__(data_dir, batch_size, num_workers, seed, source=source_name, **source_kwargs)

    View.__name__ = View.__qualname__ = f"Sequence_{source_name}"
    return View


# Named views of the built-in image sources, so a results row says what it ran on.
for _source in ("mnist5k", "mnist", "fashion_mnist", "cifar10"):
    register(f"seq_{_source}")(_view_of(_source))
