"""The run's progress reports (step: the Trainer's stage, epoch and step -> the run's progress file,
bench/core/progress.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import lightning as L

from bench.core.progress import write


class ProgressFile(L.Callback):
    """Writes the run's stage, epoch and step for the sweep's console (rank 0; a clock read per batch at most)."""

    def __init__(self, path: Path, every_s: float = 1.0):
        self.path, self.every_s, self.next_at = Path(path), every_s, 0.0

    def report(self, trainer: L.Trainer, stage: str) -> None:
        if trainer.is_global_zero:
            write(self.path, pid=os.getpid(), stage=stage, epoch=trainer.current_epoch,
                  max_epochs=trainer.max_epochs, step=trainer.global_step)
            self.next_at = time.monotonic() + self.every_s

    def on_train_start(self, trainer, pl_module) -> None:
        self.report(trainer, "fit")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if time.monotonic() >= self.next_at:
            self.report(trainer, "fit")

    def on_test_start(self, trainer, pl_module) -> None:
        self.report(trainer, "test")
