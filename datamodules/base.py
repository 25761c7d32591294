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


class RankBatches:
    """Every `world_size`-th batch of `batches`, from `rank` on: one rank's share of a data-parallel epoch.

    All ranks shuffle with the same seed, so their shares are disjoint; the last `len % world_size` batches are
    dropped so every rank takes the same number of steps (DDP's gradient all-reduce needs that).
    """

    def __init__(self, batches: BatchSampler, rank: int, world_size: int) -> None:
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def __len__(self) -> int:
        return len(self.batches) // self.world_size

    def __iter__(self):
        for i, batch in enumerate(self.batches):
            if i >= len(self) * self.world_size:
                return
            if i % self.world_size == self.rank:
                yield batch


# In-memory splits move to the GPU when together they take at most this share of its free memory: the model's
# activations, optimizer state and the allocator's cache need the rest. Larger data is served from pinned memory.
RESIDENT_SHARE_OF_FREE_MEMORY = 0.25


class DeviceBatches:
    """Pre-collated batches sliced from tensors that live on the accelerator: shuffled with a permutation drawn on
    the device, evaluation batches as views; no host work and no copy per step (Lightning's transfer is a no-op).

    Same contract as `batch_loader`: a fresh permutation each epoch from one seeded generator, and with
    world_size > 1 every world_size-th batch from `rank` on, the tail dropped so every rank takes as many steps.
    """

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        self.dataset = TensorBatches(*tensors)  # sized, as a DataLoader's: Lightning's batch finder caps at it
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator(device=tensors[0].device).manual_seed(seed) if shuffle else None

    def __len__(self) -> int:
        batches = -(-len(self.tensors[0]) // self.batch_size)
        return batches // self.world_size if self.world_size > 1 else batches

    def __iter__(self):
        n, device = len(self.tensors[0]), self.tensors[0].device
        order = torch.randperm(n, generator=self.generator, device=device) if self.shuffle else None
        for i in range(len(self)):
            start = (i * self.world_size + self.rank) * self.batch_size
            if order is None:
                yield tuple(t[start:start + self.batch_size] for t in self.tensors)
            else:
                index = order[start:start + self.batch_size]
                yield tuple(t[index] for t in self.tensors)


def free_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device; None elsewhere."""
    return torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None


HOST, RESIDENT, PINNED = "host", "resident", "pinned"


def placement(device: torch.device, tensors: list[torch.Tensor], free_bytes: int | None) -> str:
    """Where in-memory data is served from when training on `device`: HOST on a CPU (the plain loader); RESIDENT on
    an accelerator when the tensors are already there (generated there, e.g. synthetic data: a copy back to pinned
    host memory would cost more than it frees, and CUDA tensors cannot be pinned) or fit within
    RESIDENT_SHARE_OF_FREE_MEMORY of its `free_bytes`; else PINNED (host tensors in page-locked memory, each batch
    copied without blocking)."""
    if device.type == "cpu":
        return HOST
    if all(t.device.type == device.type and device.index in (None, t.device.index) for t in tensors):
        return RESIDENT
    size = sum(t.numel() * t.element_size() for t in tensors)
    return RESIDENT if free_bytes is not None and size <= RESIDENT_SHARE_OF_FREE_MEMORY * free_bytes else PINNED


def fits_on(device: torch.device, tensors: list[torch.Tensor]) -> bool:
    """Whether `tensors` may live on `device` (a CUDA device: within RESIDENT_SHARE_OF_FREE_MEMORY of its free)."""
    return device.type == "cuda" and placement(device, tensors, free_memory(device)) == RESIDENT


def batch_loader(
    dataset: TensorBatches, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0,
    rank: int = 0, world_size: int = 1, pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader that yields pre-collated batches by slicing `dataset` with a list of indices.

    With world_size > 1 each rank gets its share of the batches (such datamodules declare `shards_itself`, so the
    runner turns Lightning's DistributedSampler off: it would swap out the batch sampler and break the batches).
    """
    if shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)
    # batch_size=None: the sampler already yields whole batches, so the loader neither batches nor collates.
    batches = BatchSampler(sampler, batch_size, drop_last=False)
    if world_size > 1:
        batches = RankBatches(batches, rank, world_size)
    # pin_memory: batches land in page-locked memory, so Lightning's copy to the GPU runs without blocking.
    return DataLoader(dataset, sampler=batches, batch_size=None, num_workers=num_workers, pin_memory=pin_memory)


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

    def missing_data(self) -> str | None:
        """Why this data cannot load on this machine (files that are not there), in one line with the fix; None
        when it can. Checked when a sweep is planned, so nothing runs that would only fail."""
        return None


class TensorDataModule(BenchDataModule):
    """Train/val/test splits held in memory as tensors, served as pre-collated batches."""

    shards_itself: ClassVar[bool] = True  # train_dataloader gives each DDP rank its share (RankBatches)
    train_set: TensorBatches
    val_set: TensorBatches
    test_set: TensorBatches

    def split_tensors(self, split: str) -> tuple[torch.Tensor, ...]:
        """The whole `split` ("train", "val", "test") as tensors, e.g. (images, labels): for models that draw
        pictures of samples or fit an instrument on the data, instead of reaching into the datasets."""
        return getattr(self, f"{split}_set").tensors

    def accelerator(self) -> torch.device:
        """The device the attached Trainer trains on (the CPU when there is none)."""
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def resident_splits(self) -> dict[str, TensorBatches] | None:
        """The splits on the accelerator when they are there or fit there (moved once, then kept); else None."""
        device = self.accelerator()
        cached = getattr(self, "_resident", None)
        if cached is not None and cached[0] == device:
            return cached[1]
        splits = {name: getattr(self, f"{name}_set") for name in ("train", "val", "test")}
        unique = {id(s): s for s in splits.values()}  # synthetic data serves one set as all three
        tensors = [t for s in unique.values() for t in s.tensors]
        if placement(device, tensors, free_memory(device)) != RESIDENT:
            return None
        moved = {key: TensorBatches(*(t.to(device) for t in s.tensors)) for key, s in unique.items()}
        self._resident = (device, {name: moved[id(s)] for name, s in splits.items()})
        return self._resident[1]

    def _loader(self, split: str, shuffle: bool, rank: int = 0, world_size: int = 1):
        resident = self.resident_splits()
        if resident is not None:
            return DeviceBatches(resident[split].tensors, self.batch_size, shuffle, self.seed, rank, world_size)
        return batch_loader(getattr(self, f"{split}_set"), self.batch_size, shuffle, self.seed, self.num_workers,
                            rank, world_size, pin_memory=self.accelerator().type == "cuda")

    def train_dataloader(self):
        # Training is split across data-parallel ranks; evaluation is not: every rank scores the whole split, so
        # the synced metrics count each sample once per rank and equal the single-device value.
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return self._loader("train", True, rank, world_size)

    def val_dataloader(self):
        return self._loader("val", False)

    def test_dataloader(self):
        return self._loader("test", False)

    def predict_dataloader(self):
        return self.test_dataloader()
