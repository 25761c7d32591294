"""The largest batch that fits, for `--batch-sizes auto` (step: before the measured fit, on a trainer of its own).

Lightning's batch size finder in power mode: from the size's default batch, double until a few real training steps
(forward, backward, optimizer; the run's precision and compile mode) run out of memory, keep the last that did not.
The model's weights and optimizer state are restored afterwards, so the measured fit starts from the same place.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch
from lightning.pytorch.tuner import Tuner
from lightning.pytorch.utilities.compile import to_uncompiled

STEPS_PER_TRIAL = 3
GPU_DOUBLINGS = 8  # at most 256x the default batch: a real model runs out of memory long before
CPU_DOUBLINGS = 2  # a CPU has no out-of-memory error to stop at (it swaps), so the search stops at 4x the default


@dataclass(frozen=True)
class FoundBatch:
    batch_size: int
    note: str  # for the row's message: how the batch was found


def largest_fitting(trainer: L.Trainer, module: torch.nn.Module, datamodule: L.LightningDataModule,
                    start: int) -> FoundBatch:
    """Search with `module` (the LightningModule, or it compiled as the run compiles it) on `trainer` (no callbacks,
    no logger, no epoch bound: a schedule sized to the run's steps is not built for the trial steps to exhaust) and
    leave the batch it found on `datamodule.batch_size`."""
    on_gpu = trainer.strategy.root_device.type == "cuda"
    doublings = GPU_DOUBLINGS if on_gpu else CPU_DOUBLINGS
    # max_trials counts the start; max_val sits above the last trial so every size returned was actually tried.
    found = Tuner(trainer).scale_batch_size(module, datamodule=datamodule, mode="power",  # type: ignore[arg-type]
                                            steps_per_trial=STEPS_PER_TRIAL, init_val=start,
                                            max_trials=doublings + 1, max_val=start * 2 ** (doublings + 1))
    if isinstance(module, torch._dynamo.eval_frame.OptimizedModule):
        to_uncompiled(module)  # Lightning compiled the module's steps in place; the measured fit compiles afresh,
        torch._dynamo.reset()  # for the one batch shape it trains at
    limit = f"{start * 2**doublings} or the training set's size"
    limit = f"up to {limit}" if on_gpu else f"a CPU has no out-of-memory error, so the search stops at {limit}"
    found = found or start  # the Tuner returns None only when it did not search
    return FoundBatch(int(found), f"batch size {found} found by --batch-sizes auto (powers of two from {start}, "
                                  f"{STEPS_PER_TRIAL} training steps each; {limit})")
