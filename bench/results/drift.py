"""Quality drift (step: a finished row and the sweep's rows so far -> the row with `quality_drift`, its metric minus
the same config's 32-true metric), one rule for the sweep that writes the row and the run that logs it to W&B."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.core import config as cfg
from bench.core.row import Cells, RunRow


def with_quality_drift(row: RunRow, done: list[dict[str, Any]]) -> RunRow:
    """The row with quality_drift = its metric minus the same config's 32-true metric (both in this sweep)."""
    metric = row.get("metric_value")
    if row.config.precision == "32-true" or metric in (None, ""):
        return row
    key = cfg.run_key(row.config.columns() | {"precision": "32-true"})
    for other in done:
        if cfg.run_key(other) == key and other.get("metric_value") not in (None, ""):
            return row.add(Cells({"quality_drift": float(metric) - float(other["metric_value"])}))
    return row


def with_drift_from(row: RunRow, csv_path: Path) -> RunRow:
    """The same, against the rows the sweep has written so far (none where the file is not readable here: a Ray
    node without the driver's folder, a write in progress); the sweep applies the rule again when it writes."""
    from bench.results.io import read_rows

    try:
        return with_quality_drift(row, read_rows(csv_path))
    except Exception:  # a measurement-side nicety: never costs the row
        return row
