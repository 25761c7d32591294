"""Reading results CSVs for reports and comparisons: schema checks, config keys, aggregation of repeats."""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd

from bench.schema import READABLE_SCHEMA_VERSIONS

# What identifies "the same config" across files and repeats (seed and repeat are the repeat axis).
CONFIG_KEY = ["model", "datamodule", "device", "num_devices", "num_nodes", "precision", "compile", "batch_size",
              "profile"]
NUMERIC = ["metric_value", "metric_target", "quality_drift", "time_to_target_s", "train_samples_per_s",
           "infer_samples_per_s", "data_wait_fraction", "latency_p50_ms", "latency_p95_ms",
           "peak_gpu_mem_allocated_mb", "peak_gpu_mem_reserved_mb", "peak_rss_mb", "params", "flops_per_sample",
           "achieved_tflops", "peak_tflops", "mfu", "epochs", "steps", "wall_s"]


class ResultsError(ValueError):
    """A results file that cannot be used, with a one-line reason."""


def load_results(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in CONFIG_KEY + ["status", "schema_version"] if c not in frame.columns]
    if missing:
        raise ResultsError(f"{path}: not a dnnbench results file (missing columns {', '.join(missing)})")
    versions = set(frame["schema_version"]) - {""}
    unknown = versions - {str(v) for v in READABLE_SCHEMA_VERSIONS}
    if unknown:
        raise ResultsError(f"{path}: unknown schema_version {', '.join(sorted(unknown))} "
                           f"(this dnnbench reads versions {', '.join(map(str, READABLE_SCHEMA_VERSIONS))})")
    for column in NUMERIC:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column].replace("", None), errors="coerce")
    frame["config_label"] = config_labels(frame)
    return frame


def config_labels(frame: pd.DataFrame) -> pd.Series:
    """Column headings of a pivot: device[:count] precision [compiled]."""
    count = (pd.to_numeric(frame["num_devices"], errors="coerce").fillna(1)
             * pd.to_numeric(frame["num_nodes"], errors="coerce").fillna(1)).astype(int)
    device = frame["device"].where(count == 1, frame["device"] + ":" + count.astype(str))
    return device + " " + frame["precision"] + frame["compile"].map({"on": " compiled"}).fillna("")


def olympic_mean(values: list[float]) -> float:
    """MLPerf's olympic mean: drop the fastest and the slowest, average the rest."""
    ordered = sorted(values)
    return statistics.fmean(ordered[1:-1])


def summarize(values: list[float]) -> tuple[float, float | None]:
    """(centre, spread) of repeats: olympic mean with >= 5, median otherwise; spread = max - min."""
    if not values:
        return float("nan"), None
    centre = olympic_mean(values) if len(values) >= 5 else statistics.median(values)
    return centre, (max(values) - min(values)) if len(values) > 1 else None
