"""A run's own W&B run (step: one run -> its W&B run: started before the fit, its per-step curves, finished with
the row). W&B is imported only where a run logs to it."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import lightning as L

from bench.config import RunConfig
from bench.measure import Columns
from bench.results_io import flatten
from bench.row import RunRow


def start(config: RunConfig, sweep_dir: Path):
    """The run's W&B logger with its W&B run already started: online, else offline, else none.

    Started here rather than lazily inside fit, where a W&B that went away since the sweep's check would fail the
    run; here a failure only changes where (or whether) the run is logged.
    """
    if config.wandb == "disabled":
        return None
    from bench import wandb_log

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
    from bench import wandb_log

    return wandb_log.StepHistory()


def finish(logger, config: RunConfig, pieces: Sequence[Columns], message: str, artifact_dir: Path) -> None:
    if logger is None:
        return
    try:
        from bench import wandb_log

        row = RunRow(config, message=message, pieces=list(pieces))
        wandb_log.finish_run(logger, flatten(row), artifact_dir)
    except Exception as exc:
        print(f"dnnbench: W&B summary not written ({exc})", file=sys.stderr)
