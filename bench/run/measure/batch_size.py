"""The largest batch that fits, for `--batch-sizes auto` (step: before the measured fit, on a trainer of its own).

Lightning's batch size finder in power mode: from the size's default batch, double until a few real training steps
(forward, backward, optimizer; the run's precision and compile mode) run out of memory, keep the last that did not.
The search also stops at 256x the default (4x on a CPU), at Lightning's limit of 8192 and at the training split's
size (a batch larger than the data only ever trains on the whole split); the row's message says which stopped it.
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
LIGHTNING_MAX_BATCH = 8192  # Lightning's finder never doubles past this (its _adjust_batch_size default)


@dataclass(frozen=True)
class FoundBatch:
    batch_size: int
    note: str  # for the row's message: how the batch was found and which limit stopped the search


def doublings_allowed(start: int, on_gpu: bool) -> tuple[int, str]:
    """How many doublings the search may try from `start`, and the limit that sets it."""
    if not on_gpu:
        return CPU_DOUBLINGS, (f"a CPU has no out-of-memory error, so the search stops at {2**CPU_DOUBLINGS}x the "
                               "default")
    within_lightning = max(0, (LIGHTNING_MAX_BATCH // start).bit_length() - 1)  # start * 2**d <= 8192
    if within_lightning < GPU_DOUBLINGS:
        return within_lightning, f"Lightning's batch size finder goes no higher than {LIGHTNING_MAX_BATCH}"
    return GPU_DOUBLINGS, f"the search stops at {2**GPU_DOUBLINGS}x the default"


def training_split_size(datamodule: L.LightningDataModule) -> int | None:
    """Samples in the training split, when the datamodule holds it in memory (after setup)."""
    from lightning.fabric.utilities.data import sized_len

    split = getattr(datamodule, "train_set", None)
    return sized_len(split) if split is not None else None


def cap_at_split(found: int, start: int, samples: int | None) -> int:
    """The largest power-of-two multiple of `start` that is no larger than the training split (`found` if it is
    not larger): a batch larger than the data only ever trains on the whole split."""
    if samples is None or found <= samples:
        return found
    return start * 2 ** ((samples // start).bit_length() - 1) if samples >= start else min(found, start)


def largest_fitting(trainer: L.Trainer, module: torch.nn.Module, datamodule: L.LightningDataModule,
                    start: int) -> FoundBatch:
    """Search with `module` (the LightningModule, or it compiled as the run compiles it) on `trainer` (no callbacks,
    no logger, no epoch bound: a schedule sized to the run's steps is not built for the trial steps to exhaust) and
    leave the batch it found on `datamodule.batch_size`."""
    doublings, limit = doublings_allowed(start, trainer.strategy.root_device.type == "cuda")
    # max_trials counts the start; max_val sits above the last trial so every size returned was actually tried.
    found = int(Tuner(trainer).scale_batch_size(module, datamodule=datamodule, mode="power",  # type: ignore[arg-type]
                                                steps_per_trial=STEPS_PER_TRIAL, init_val=start,
                                                max_trials=doublings + 1, max_val=start * 2 ** (doublings + 1)))
    if isinstance(module, torch._dynamo.eval_frame.OptimizedModule):
        to_uncompiled(module)  # Lightning compiled the module's steps in place; the measured fit compiles afresh,
        torch._dynamo.reset()  # for the one batch shape it trains at
    samples = training_split_size(datamodule)
    capped = cap_at_split(found, start, samples)
    if capped != found or (samples is not None and found == samples):
        stop = f"stopped by the training split's {samples} samples"
    elif found < start * 2**doublings:
        stop = f"stopped by running out of memory at {2 * found}"
    else:
        stop = limit
    datamodule.batch_size = capped  # type: ignore[attr-defined]
    return FoundBatch(capped, f"batch size {capped} found by --batch-sizes auto (powers of two from {start}, "
                              f"{STEPS_PER_TRIAL} training steps each; {stop})")
