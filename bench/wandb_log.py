"""Weights & Biases (step: a run's row and a sweep's CSV -> W&B runs): one run per config through Lightning's
WandbLogger, and one summary run per sweep read through the one results reader.

Offline by default when no API key is set: runs land in <sweep>/wandb/ ready for `wandb sync`.
Nothing here may fail a sweep: callers catch and warn.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

PROJECT = os.environ.get("WANDB_PROJECT", "dnnbench")


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """W&B summaries want plain scalars; empty and NaN cells are left out rather than logged as zero."""
    clean = {}
    for key, value in row.items():
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            continue
        clean[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return clean


def run_logger(config, save_dir: Path):
    """A WandbLogger for one RunConfig (None when disabled), grouped by sweep, named and tagged by its identity."""
    if config.wandb == "disabled":
        return None
    from lightning.pytorch.loggers import WandbLogger

    os.environ.setdefault("WANDB_SILENT", "true")
    columns = config.columns()
    tags = [str(columns[k]) for k in ("model", "datamodule", "device", "precision", "batch_size")]
    return WandbLogger(project=PROJECT, group=config.sweep_name or None, name=config.label(),
                       save_dir=str(save_dir), mode=config.wandb, tags=tags,
                       config=_clean(config.to_dict() | columns), job_type="run", reinit="finish_previous")


def finish_run(logger, row: dict[str, Any]) -> None:
    """The finished result row becomes the run's summary."""
    experiment = logger.experiment
    experiment.summary.update(_clean(row))
    experiment.finish()


def log_sweep(csv_path: Path, sweep_dir: Path, sweep_name: str, mode: str) -> None:
    """One summary run: the results as a wandb.Table and the report's plots as images."""
    if mode == "disabled":
        return
    import pandas as pd
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    run = wandb.init(project=PROJECT, group=sweep_name or None, name=f"{sweep_name}-summary", job_type="summary",
                     dir=str(sweep_dir), mode=mode, reinit="finish_previous")
    payload: dict[str, Any] = {"results": wandb.Table(dataframe=frame)}
    for image in sorted(Path(sweep_dir).glob("*.png")):
        payload[f"plots/{image.stem}"] = wandb.Image(str(image))
    run.log(payload)
    run.summary.update({"runs": len(frame), "ok": int((frame["status"] == "ok").sum())})
    run.finish()
