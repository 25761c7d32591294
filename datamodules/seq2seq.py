"""seq2seq: a procedural sequence-to-sequence task (reverse or sort a random digit string)."""

from __future__ import annotations

from typing import Any

import torch

from datamodules import ConfigError, register
from datamodules.base import SEQ2SEQ, TensorBatches, TensorDataModule

TASKS = ("reverse", "sort")


@register("seq2seq")
class Seq2Seq(TensorDataModule):
    """Source: `length` random tokens in [0, num_digits); target: the same tokens reversed or sorted.

    Batches are (source (B, L) long, target (B, L) long). Token `num_digits` is the decoder's
    begin-of-sequence token, so the vocabulary has num_digits + 1 entries.
    """

    kind = SEQ2SEQ

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
        task: str = "reverse",
        length: int = 8,
        num_digits: int = 10,
        num_train: int = 10000,
        num_val: int = 1000,
        num_test: int = 1000,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed)
        if task not in TASKS:
            raise ConfigError(f"seq2seq: unknown task {task!r}; choose one of {', '.join(TASKS)}.")
        if length < 1 or num_digits < 2:
            raise ConfigError("seq2seq: length must be >= 1 and num_digits >= 2.")
        self.task, self.length, self.num_digits = task, length, num_digits
        self.sizes = (num_train, num_val, num_test)
        self.bos_token = num_digits
        self._prepared = False

    def make_targets(self, source: torch.Tensor) -> torch.Tensor:
        if self.task == "reverse":
            return source.flip(-1)
        return source.sort(dim=-1).values

    def setup(self, stage: str | None = None) -> None:
        if self._prepared:
            return
        generator = torch.Generator().manual_seed(self.seed)
        source = torch.randint(0, self.num_digits, (sum(self.sizes), self.length), generator=generator)
        target = self.make_targets(source)
        train_end, val_end = self.sizes[0], self.sizes[0] + self.sizes[1]
        self.train_set = TensorBatches(source[:train_end], target[:train_end])
        self.val_set = TensorBatches(source[train_end:val_end], target[train_end:val_end])
        self.test_set = TensorBatches(source[val_end:], target[val_end:])
        self._prepared = True

    def shape_facts(self) -> dict[str, Any]:
        return {"vocab_size": self.num_digits + 1, "seq_len": self.length, "bos_token": self.bos_token}
