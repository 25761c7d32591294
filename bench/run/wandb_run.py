"""A run's own W&B run (step: one run -> its W&B run: started before the fit, its per-step curves, finished with
the row). W&B is imported only where a run logs to it."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L

from bench.core.config import RunConfig
from bench.core.row import Columns, RunRow
from bench.integrations import wandb_log
from bench.results.io import flatten
from bench.run.measure.steps import batch_size_of


def start(config: RunConfig, sweep_dir: Path):
    """The run's W&B logger with its W&B run already started: online, else offline, else none.

    Started here rather than lazily inside fit, where a W&B that went away since the sweep's check would fail the
    run; here a failure only changes where (or whether) the run is logged.
    """
    if config.wandb == "disabled":
        return None
    os.environ.setdefault("WANDB_INIT_TIMEOUT", wandb_log.INIT_TIMEOUT_S)
    for mode in (config.wandb, "offline"):  # offline twice for an offline run: the first may meet a dead service
        try:
            logger = wandb_log.run_logger(config.but(wandb=mode), sweep_dir)
            logger.experiment  # noqa: B018 - starts the W&B run (rank 0; other ranks get Lightning's dummy)
            return logger
        except Exception as exc:
            print(f"dnnbench: W&B {mode} logging failed for this run ({exc})".splitlines()[0], file=sys.stderr)
            wandb_log.forget_service()  # the sweep's shared service may be what failed: the next try starts its own
    return None


def history() -> L.Callback:
    return StepHistory()


def finish(logger, config: RunConfig, pieces: Sequence[Columns], message: str, artifact_dir: Path) -> None:
    if logger is None:
        return
    try:
        row = RunRow(config, message=message, pieces=tuple(pieces))
        wandb_log.finish_run(logger, flatten(row), artifact_dir)
    except Exception as exc:
        print(f"dnnbench: W&B summary not written ({exc})", file=sys.stderr)


class StepHistory(L.Callback):
    """Per-step training loss and samples/s for W&B curves. The losses stay on the device during fit and are
    logged once fit ends, so logging adds no host synchronisation inside the timed steps."""

    def __init__(self) -> None:
        self.losses: list[Any] = []
        self.ends: list[float] = []
        self.samples: list[int] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        self.losses.append(loss.detach() if loss is not None and hasattr(loss, "detach") else None)
        self.ends.append(time.perf_counter())
        self.samples.append(batch_size_of(batch) * trainer.world_size)

    def on_fit_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.logger is None:
            return
        try:
            wandb_log.log_history(trainer.logger.experiment, self.history())
        except Exception as exc:  # W&B never costs a row
            print(f"dnnbench: W&B step history not logged ({exc})", file=sys.stderr)

    def history(self) -> list[dict[str, float]]:
        """One entry per step: `step/loss` where the step returned one, `step/samples_per_s` from the host clock
        between step ends (on a GPU, queued work evens out over a few steps)."""
        import torch

        scalars = [loss for loss in self.losses if loss is not None and loss.numel() == 1]
        values = iter(torch.stack([v.reshape(()).float() for v in scalars]).tolist() if scalars else [])
        steps = []
        for i, loss in enumerate(self.losses):
            entry: dict[str, float] = {"trainer/global_step": i + 1}
            if loss is not None and loss.numel() == 1:
                entry["step/loss"] = next(values)
            if i > 0 and self.ends[i] > self.ends[i - 1]:
                entry["step/samples_per_s"] = self.samples[i] / (self.ends[i] - self.ends[i - 1])
            steps.append(entry)
        return steps
