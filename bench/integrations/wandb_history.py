"""W&B for `dnnbench history` (step: the series over commits and their steps -> one W&B summary run): a line plot
per series and metric over the commits, the steps as a table. Offline without an API key, as a sweep's runs are;
nothing here may fail the command: its caller warns."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

POINT_COLUMNS = ["commit_order", "commit", "median", "low", "high"]


def log_history(points: pd.DataFrame, steps: pd.DataFrame, out: Path, mode: str, project: str,
                entity: str | None = None) -> None:
    """One run named `history`: `points` holds one row per series, metric and commit (POINT_COLUMNS beside `series`
    and `metric`); each (series, metric) becomes a table and its line plot, the steps a table, their count the
    summary."""
    if mode == "disabled":
        return
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(project=project, entity=entity or None, name="history", job_type="history", dir=str(out),
                     mode=mode,  # type: ignore[arg-type]
                     reinit="finish_previous", settings=wandb.Settings(silent=True))
    payload: dict[str, Any] = {}
    for (series, metric), rows in points.groupby(["series", "metric"], sort=False):
        table = wandb.Table(dataframe=rows[POINT_COLUMNS].reset_index(drop=True))
        payload[f"{series}/{metric}"] = wandb.plot.line(table, "commit_order", "median", title=f"{series}: {metric}")
    if not steps.empty:
        payload["steps"] = wandb.Table(dataframe=steps.astype(str))
    run.log(payload)
    regressions = int((steps["verdict"] == "REGRESSION").sum()) if not steps.empty else 0
    run.summary.update({"series": int(points["series"].nunique()) if not points.empty else 0, "steps": len(steps),
                        "regressions": regressions})
    run.finish()
