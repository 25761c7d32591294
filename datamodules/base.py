"""What every dnnbench datamodule shares: the shape facts contract and pre-collated tensor batches."""

from __future__ import annotations

from typing import Any, ClassVar

import lightning as L
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

# Kinds of data a model can accept (a model's `BenchSpec.accepts` names some of these).
IMAGE, SEQUENCE, SEQ2SEQ, RL = "image", "sequence", "seq2seq", "rl"


class TensorBatches(Dataset):
    """Tensors indexed by a whole batch of indices at once: no per-sample __getitem__, no collate."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        assert tensors and all(len(t) == len(tensors[0]) for t in tensors), "tensors must share length"
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices)
        return tuple(t[index] for t in self.tensors)


def batch_loader(
    dataset: TensorBatches, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0
) -> DataLoader:
    """A DataLoader that yields pre-collated batches by slicing `dataset` with a list of indices."""
    if shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)
    # batch_size=None: the sampler already yields whole batches, so the loader neither batches nor collates.
    batches = BatchSampler(sampler, batch_size, drop_last=False)
    return DataLoader(dataset, sampler=batches, batch_size=None, num_workers=num_workers)


def stratified_split(
    labels: torch.Tensor, sizes: tuple[int, ...], seed: int
) -> tuple[torch.Tensor, ...]:
    """Index tensors of the requested sizes, each with the class proportions of `labels`."""
    remaining = torch.arange(len(labels))
    parts = []
    for size in sizes[:-1]:
        rest = len(remaining) - size
        taken, remaining_np = train_test_split(
            remaining.numpy(), train_size=size, test_size=rest, stratify=labels[remaining].numpy(),
            random_state=seed,
        )
        parts.append(torch.as_tensor(taken))
        remaining = torch.as_tensor(remaining_np)
    if len(remaining) != sizes[-1]:
        raise ValueError(f"split sizes {sizes} do not add up to {len(labels)} samples")
    parts.append(remaining)
    return tuple(parts)


class BenchDataModule(L.LightningDataModule):
    """A LightningDataModule with the facts a model needs to size itself (see `shape_facts`)."""

    kind: ClassVar[str]
    has_quality: ClassVar[bool] = True  # False for synthetic data: its "quality" means nothing

    def __init__(self, data_dir: str = "data", batch_size: int = 128, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed

    def shape_facts(self) -> dict[str, Any]:
        """Keyword arguments a model may take from the data (input_shape, num_classes, vocab_size...)."""
        raise NotImplementedError


class TensorDataModule(BenchDataModule):
    """Train/val/test splits held in memory as tensors, served as pre-collated batches."""

    train_set: TensorBatches
    val_set: TensorBatches
    test_set: TensorBatches

    def train_dataloader(self) -> DataLoader:
        return batch_loader(self.train_set, self.batch_size, True, self.seed, self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return batch_loader(self.val_set, self.batch_size, False, self.seed, self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return batch_loader(self.test_set, self.batch_size, False, self.seed, self.num_workers)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
