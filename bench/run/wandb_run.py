"""A run's own W&B run (step: one run -> its W&B run: started before the fit, its per-step curves logged while the
fit runs, finished with the run's row as its summary). W&B is imported only where a run logs to it."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L

from bench.core.config import RunConfig
from bench.core.row import RunRow
from bench.integrations import wandb_log
from bench.run.measure.steps import batch_size_of

_started: list = []  # this process's W&B logger, once `start` made one: `finish` ends it with the row


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
            _started[:] = [logger]
            return logger
        except Exception as exc:
            print(f"dnnbench: W&B {mode} logging failed for this run ({exc})".splitlines()[0], file=sys.stderr)
            wandb_log.forget_service()  # the sweep's shared service may be what failed: the next try starts its own
    return None


def started() -> bool:
    """Whether this process started a W&B run that `finish` has still to end."""
    return bool(_started)


def history(window=None, watch=None) -> L.Callback:
    return StepHistory(window, watch)


def finish(row: RunRow, artifact_dir: Path) -> None:
    """End this process's W&B run (if `start` began one) with `row`, the run's whole row as the sweep writes it
    (bench/run/child.py calls this once the row is complete, whatever the run's status)."""
    if not _started:
        return
    logger = _started.pop()
    try:
        wandb_log.finish_run(logger, row, artifact_dir)
    except Exception as exc:
        print(f"dnnbench: W&B summary not written ({exc})", file=sys.stderr)


class StepHistory(L.Callback):
    """Per-step training loss and samples/s for W&B curves, logged while the fit runs.

    A step's loss stays on the device until the speed window has synchronised anyway: the steps so far are logged
    when a timed sub-window closes (after its clock stopped, before the next one starts), at an epoch's end and
    before validation, so logging adds no host synchronisation inside a timed window. Samples/s comes from the host
    clock between step ends (on a GPU, queued work evens out over a few steps). W&B's own host time (~0.2 ms a step
    on a 2-core CPU) is left out of `watch`'s time to target: it is the harness's, not the model's.
    """

    def __init__(self, window=None, watch=None) -> None:
        self.watch = watch  # a QualityWatch (bench/run/measure/quality.py): its clock skips the logging
        self.pending: list[tuple[int, Any, float | None]] = []  # (step, loss on the device, samples/s)
        self.steps = 0
        self._last_end: float | None = None
        self._trainer: Any = None
        if window is not None:
            window.listeners.append(self)  # told where the window's clock stops (closed) and starts (opened)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        loss = loss.detach() if loss is not None and hasattr(loss, "detach") and loss.numel() == 1 else None
        samples = batch_size_of(batch) * trainer.world_size
        rate = samples / (now - self._last_end) if self._last_end is not None and now > self._last_end else None
        self.steps += 1
        self.pending.append((self.steps, loss, rate))
        self._last_end, self._trainer = now, trainer

    def opened(self) -> None:
        pass

    def closed(self) -> None:
        self.flush()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.flush()

    def on_validation_start(self, trainer, pl_module) -> None:
        self.flush()

    def on_fit_end(self, trainer, pl_module) -> None:
        self.flush()

    def flush(self) -> None:
        """Log the steps not yet logged (rank 0's logger only); W&B never costs a row."""
        trainer = self._trainer
        if trainer is None or not trainer.is_global_zero or trainer.logger is None:
            self.pending.clear()  # other DDP ranks log nothing: nothing to copy to the host
            return
        if not (entries := self.entries()):
            return
        started = time.perf_counter()  # after `entries` copied the losses: what the device did is the model's time
        try:
            experiment = trainer.logger.experiment
            for entry in entries:
                experiment.log(entry)
        except Exception as exc:
            print(f"dnnbench: W&B step history not logged ({exc})", file=sys.stderr)
        if self.watch is not None:
            self.watch.excluded_s += time.perf_counter() - started

    def entries(self) -> list[dict[str, float]]:
        """The pending steps as history entries (`trainer/global_step`, `step/loss`, `step/samples_per_s`): one
        copy of their losses to the host."""
        import torch

        pending, self.pending = self.pending, []
        scalars = [loss for _, loss, _ in pending if loss is not None]
        values = iter(torch.stack([v.reshape(()).float() for v in scalars]).tolist() if scalars else [])
        entries = []
        for step, loss, rate in pending:
            entry: dict[str, float] = {"trainer/global_step": step}
            if loss is not None:
                entry["step/loss"] = next(values)
            if rate is not None:
                entry["step/samples_per_s"] = rate
            entries.append(entry)
        return entries
