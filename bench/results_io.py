"""The one results CSV reader and writer (step: rows to disk, and back for resume, report, compare and W&B)."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from bench import config
from bench.columns import COLUMNS, NUMERIC, READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION


class ResultsError(ValueError):
    """A results file that cannot be used, with a one-line reason."""


# ----------------------------------------------------------------------------------------------- writing
def format_cell(value: Any) -> str:
    """One CSV cell: empty for missing, 6 significant digits for floats, JSON for structured values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def as_cells(row: dict[str, Any]) -> dict[str, str]:
    return {column: format_cell(row.get(column)) for column in COLUMNS}


def append_row(csv_path: Path, row: dict[str, Any]) -> dict[str, str]:
    """Append one row and flush it to disk at once: a sweep killed at any moment keeps every finished row."""
    new_file = not csv_path.exists() or csv_path.stat().st_size == 0
    cells = as_cells(row)
    with open(csv_path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        writer.writerow(cells)
        f.flush()
        os.fsync(f.fileno())
    return cells


def repair_partial_last_line(csv_path: Path) -> bool:
    """Cut a last line that a crash or a full disk left without its newline; True if there was one.

    Every row is written with its line ending in one write, so a line without one was never finished: it is
    dropped (and its run re-run on resume) rather than glued to the next row.
    """
    if not csv_path.exists() or csv_path.stat().st_size == 0:
        return False
    with open(csv_path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return False
        f.truncate(data.rfind(b"\n") + 1)
    return True


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    """The finished rows of a sweep's CSV as strings (for resume and drift); [] when there is none yet."""
    if not csv_path.exists() or csv_path.stat().st_size == 0:
        return []
    try:
        with open(csv_path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ResultsError(f"{csv_path}: not a readable results CSV ({exc})") from None
    if reader.fieldnames != COLUMNS:
        found = rows[0].get("schema_version") if rows else "?"
        raise ResultsError(f"{csv_path} was written with other columns (schema_version {found or '?'}; this "
                           f"dnnbench writes {SCHEMA_VERSION}): appending would misalign them; --out a new folder")
    return rows


# ----------------------------------------------------------------------------------------------- reading
def parse_other_metrics(cell: str) -> dict[str, dict[str, Any]]:
    """`other_metrics` of any readable version as {name: {"value": v, "better": "max"|"min"|None}}.

    Version 3 writes a JSON object; versions 1-2 wrote `name=value` pairs with no direction.
    """
    cell = (cell or "").strip()
    if not cell:
        return {}
    if cell.startswith("{"):
        return {name: entry if isinstance(entry, dict) else {"value": entry, "better": None}
                for name, entry in json.loads(cell).items()}
    pairs = (pair.partition("=") for pair in cell.split())
    return {name: {"value": float(value), "better": None} for name, _, value in pairs}


def load_results(path: str | Path) -> pd.DataFrame:
    """A results CSV of any readable schema version as a frame: numeric columns parsed, identity columns filled."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    added_in_3 = ("model_args", "data_args", "compile_mode", *config.SETTINGS_BEFORE_SCHEMA_3)
    required = [c for c in config.IDENTITY if c not in added_in_3] + ["status", "schema_version"]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ResultsError(f"{path}: not a dnnbench results file (missing columns {', '.join(missing)})")
    versions = set(frame["schema_version"]) - {""}
    unknown = versions - {str(v) for v in READABLE_SCHEMA_VERSIONS}
    if unknown:
        raise ResultsError(f"{path}: unknown schema_version {', '.join(sorted(unknown))} "
                           f"(this dnnbench reads versions {', '.join(map(str, READABLE_SCHEMA_VERSIONS))})")
    for column in ("model_args", "data_args", "other_metrics"):  # absent before schema 3 (other_metrics: 2)
        if column not in frame:
            frame[column] = ""
    for column in ("model_args", "data_args"):
        frame[column] = frame[column].map(config.args_cell)
    for column, value in config.SETTINGS_BEFORE_SCHEMA_3.items():
        if column not in frame:
            frame[column] = value
    if "compile_mode" not in frame:
        frame["compile_mode"] = frame["compile"].map({"on": "default"}).fillna("")
    try:
        frame["other_metrics"] = frame["other_metrics"].map(parse_other_metrics)
    except ValueError as exc:
        raise ResultsError(f"{path}: unreadable other_metrics cell ({exc})") from None
    for column in NUMERIC:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column].replace("", None), errors="coerce")
    frame["config_id"] = [config.identity(row) for row in frame.to_dict("records")]
    frame["config_label"] = [config.label(row) for row in frame.to_dict("records")]
    return frame
