"""The one results CSV reader and writer (step: rows to disk, and back for resume, report, compare and W&B).

A file's records and the one rule for its last row (whole, cut by a crash, or refused) are in bench/results/records.py.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core import config
from bench.core.axes import AXES
from bench.core.columns import COLUMNS, NUMERIC, READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION, Status
from bench.core.errors import ResultsError
from bench.core.inference_columns import (
    INFERENCE_COLUMNS,
    INFERENCE_FILE,
    INFERENCE_NUMERIC,
    INFERENCE_SCHEMA_VERSION,
    KEY,
    READABLE_INFERENCE_VERSIONS,
)
from bench.core.row import RunRow
from bench.results.records import line_break_missing, parse_records, row_text

if TYPE_CHECKING:  # pandas loads only where results are read back (the child writes its row without it)
    import pandas as pd

KNOWN = frozenset(COLUMNS)


# ----------------------------------------------------------------------------------------------- writing
def format_cell(value: Any) -> str:
    """One CSV cell: empty for missing (a NaN or an infinity is no measurement, and no reader takes it), 6
    significant digits for floats, JSON for structured values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


class UnknownColumnError(ValueError):
    """A row names a column the table does not have (a misspelt field would otherwise be an empty column)."""


def strict_columns() -> bool:
    """Tests (and anyone who sets DNNBENCH_STRICT_COLUMNS=1) make an unknown column an error; a real sweep keeps the
    row, says so on stderr and in `message`: a measurement must never cost a row, nor vanish silently."""
    return os.environ.get("DNNBENCH_STRICT_COLUMNS", "") not in ("", "0")


def unknown_columns(names: Iterable[str], where: str, known: Iterable[str] = KNOWN) -> list[str]:
    unknown = sorted(set(names) - set(known))
    if unknown and strict_columns():
        raise UnknownColumnError(f"{where} names columns that are not in bench/core/columns.py: {', '.join(unknown)}")
    if unknown:
        print(f"dnnbench: warning: {where} names unknown columns {', '.join(unknown)}; not written", file=sys.stderr)
    return unknown


def flatten(row: RunRow) -> dict[str, Any]:
    """The typed row as {column: value}: the config's cells, the outcome, then each piece's columns in order."""
    cells: dict[str, Any] = row.config.columns() | {
        "status": row.status, "message": row.message, "started_at": row.started_at,
        "schema_version": SCHEMA_VERSION, "reproduce": row.config.reproduce()}
    for piece in row.pieces:
        columns = piece.columns()
        dropped = unknown_columns(columns, type(piece).__name__)
        cells |= {name: value for name, value in columns.items() if name not in dropped}
        if dropped:
            cells["message"] = "; ".join(filter(None, [cells["message"], f"unknown columns {', '.join(dropped)}"]))
    return cells


def as_cells(row: dict[str, Any], columns: list[str] = COLUMNS) -> dict[str, str]:
    unknown_columns(row, "a results row", columns)
    return {column: format_cell(row.get(column)) for column in columns}


def append_row(csv_path: Path, row: RunRow | dict[str, Any], columns: list[str] = COLUMNS) -> dict[str, str]:
    """Append one row (a run's typed row, flattened here; or an inference.csv row's cells) and flush it to disk at
    once: a sweep killed at any moment keeps every finished row. Returns the cells as written.

    A whole last row whose line break was lost (an editor, a copy tool) gets it back first, in the same write.
    `columns`: results.csv's by default; inference.csv's (bench/core/inference_columns.py) for its rows.
    """
    row = flatten(row) if isinstance(row, RunRow) else row
    new_file = not csv_path.exists() or csv_path.stat().st_size == 0
    cells = as_cells(row, columns)
    text = ",".join(columns) + "\r\n" if new_file else line_break_missing(csv_path)
    with open(csv_path, "a", newline="") as f:
        f.write(text + row_text([cells[column] for column in columns]))
        f.flush()
        os.fsync(f.fileno())
    return cells


def append_inference_rows(csv_path: Path, rows: list[dict[str, Any]]) -> None:
    """A run's inference.csv rows (one per backend x batch size), each appended as results.csv's rows are."""
    if rows and csv_path.exists() and csv_path.stat().st_size:
        header, _ = parse_records(csv_path)
        if header != INFERENCE_COLUMNS:
            raise ResultsError(f"{csv_path}: written with other columns than this dnnbench's inference.csv "
                               f"(schema_version {INFERENCE_SCHEMA_VERSION}): --out a new folder")
    for row in rows:
        append_row(csv_path, row, INFERENCE_COLUMNS)


def last_of_each_run(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with only the last of each run (`config.run_key`): `--resume` re-runs a finished run whose inference
    points are missing (a row cut by a crash, backends added since), and its new row supersedes the old one."""
    last = {config.run_key(row): index for index, row in enumerate(rows)}
    return [row for index, row in enumerate(rows) if last[config.run_key(row)] == index]


def finite_number(cell: str) -> bool:
    """Whether a cell is a number the writer can have written: finite (no inf, -inf, 1e309 or NaN), no `1_000`."""
    try:
        return math.isfinite(float(cell)) and "_" not in cell
    except ValueError:
        return False


def checked_rows(path: Path, header: list[str], records: list[tuple[int, list[str]]],
                 numeric_columns: list[str] = NUMERIC, required: Iterable[str] = ()) -> list[dict[str, str]]:
    """Rows as {column: cell}, each with its number of cells, a known status, finite numbers where numbers belong
    and a cell in each `required` column."""
    if len(set(header)) != len(header):
        twice = sorted({column for column in header if header.count(column) > 1})
        raise ResultsError(f"{path}: the header names {', '.join(twice)} twice")
    numeric = [column for column in numeric_columns if column in header]
    statuses = {status.value for status in Status}
    rows = []
    for line, cells in records:
        where = f"{path} line {line}"
        if len(cells) != len(header):
            raise ResultsError(f"{where}: {len(cells)} fields where the header has {len(header)}")
        row = dict(zip(header, cells))
        if "status" in row and row["status"] not in statuses:
            raise ResultsError(f"{where}: unknown status {row['status']!r} (known: {', '.join(sorted(statuses))})")
        for column in numeric:
            if row[column] and not finite_number(row[column]):
                raise ResultsError(f"{where}: {column} {row[column][:40]!r} is not a finite number")
        for column in required:
            if not row.get(column):
                raise ResultsError(f"{where}: empty {column}")
        rows.append(row)
    return rows


def header_difference(header: list[str]) -> str:
    """How a results file's header differs from the columns this dnnbench writes, in words."""
    added = [column for column in header if column not in COLUMNS]
    missing = [column for column in COLUMNS if column not in header]
    if not added and not missing:
        return "written with other columns: the same ones in another order"
    parts = [f"columns it does not write ({', '.join(added)})"] if added else []
    if missing:
        parts.append(f"no {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} column")
    return f"written with other columns: {' and '.join(parts)} (this dnnbench writes schema_version {SCHEMA_VERSION})"


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    """The finished rows of a sweep's CSV as strings (for resume and drift); [] when there is none yet."""
    if not csv_path.exists():
        return []
    if not csv_path.is_file():
        raise ResultsError(f"{csv_path} is not a file")
    if csv_path.stat().st_size == 0:
        return []
    header, records = parse_records(csv_path)
    if header != COLUMNS:
        raise ResultsError(f"{csv_path}: {header_difference(header)}: appending would misalign them; "
                           "--out a new folder")
    return last_of_each_run(checked_rows(csv_path, header, records))


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


def fill_older_config(frame: pd.DataFrame) -> None:
    """The config columns an older schema lacks, as the runs that wrote it ran (each axis's `before`)."""
    for axis in AXES:
        if axis.before is None or axis.csv in frame:
            continue
        before = axis.before
        frame[axis.csv] = [before(row) for row in frame.to_dict("records")] if callable(before) else before
    for axis in AXES:
        if axis.type is dict:
            frame[axis.csv] = frame[axis.csv].map(config.args_cell)


def fill_reached_target(frame: pd.DataFrame) -> None:
    """`reached_target` of rows written before it existed (schema <= 4): their `time_to_target_s` was filled exactly
    when validation reached the target, so it says the same (ok rows with a target only; cells still strings)."""
    older = frame["reached_target"].eq("") & frame["metric_target"].ne("") & frame["status"].eq(Status.OK.value)
    frame.loc[older, "reached_target"] = frame.loc[older, "time_to_target_s"].ne("").map({True: "yes", False: "no"})


def load_results(path: str | Path) -> pd.DataFrame:
    """A results CSV of any readable schema version as a frame: numeric columns parsed, identity columns filled."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: {'a folder, not a results CSV' if path.is_dir() else 'no such file'}")
    header, records = parse_records(path)
    later = [axis.csv for axis in AXES if axis.before is not None]  # config columns added after schema 1
    required = [c for c in config.IDENTITY if c not in later] + ["status", "schema_version"]
    missing = [c for c in required if c not in header]
    if missing:
        raise ResultsError(f"{path}: not a dnnbench results file (missing columns {', '.join(missing)})")
    frame = pd.DataFrame(checked_rows(path, header, records), columns=header, dtype=str)
    versions = set(frame["schema_version"]) - {""}
    unknown = versions - {str(v) for v in READABLE_SCHEMA_VERSIONS}
    if unknown:
        raise ResultsError(f"{path}: unknown schema_version {', '.join(sorted(unknown))} "
                           f"(this dnnbench reads versions {', '.join(map(str, READABLE_SCHEMA_VERSIONS))})")
    fill_older_config(frame)
    runs = pd.Series([config.run_key(row) for row in frame.to_dict("records")], index=frame.index, dtype=object)
    frame = frame[~runs.duplicated(keep="last")].reset_index(drop=True)  # a re-run's row wins (last_of_each_run)
    for column in COLUMNS:  # columns added by later schemas read as empty cells (other_metrics: before 2)
        if column not in frame:
            frame[column] = ""
    fill_reached_target(frame)
    try:
        frame["other_metrics"] = frame["other_metrics"].map(parse_other_metrics)
    except ValueError as exc:
        raise ResultsError(f"{path}: unreadable other_metrics cell ({exc})") from None
    for column in NUMERIC:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column].replace("", None), errors="coerce")
    rows = frame.to_dict("records")
    frame["config_id"] = [config.identity(row) for row in rows]
    frame["config_label"] = [config.label(row) for row in rows]
    return frame


def load_inference(path: str | Path) -> pd.DataFrame:
    """An inference.csv as a frame (numbers parsed, `config_id` / `config_label` as results frames have them, and
    `point_id`: the config with the backend and batch size); the last row of a (run, backend, batch size) that a
    resumed run wrote again wins. An empty frame when there is no file."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=[*INFERENCE_COLUMNS, "config_id", "config_label", "point_id"])
    header, records = parse_records(path)
    missing = [c for c in (*config.IDENTITY, *KEY, "run_id", "status", "schema_version") if c not in header]
    if missing:
        raise ResultsError(f"{path}: not a dnnbench inference.csv (missing columns {', '.join(missing)})")
    frame = pd.DataFrame(checked_rows(path, header, records, INFERENCE_NUMERIC, KEY), columns=header, dtype=str)
    unknown = set(frame["schema_version"]) - {""} - {str(v) for v in READABLE_INFERENCE_VERSIONS}
    if unknown:
        raise ResultsError(f"{path}: unknown inference schema_version {', '.join(sorted(unknown))} (this dnnbench "
                           f"reads versions {', '.join(map(str, READABLE_INFERENCE_VERSIONS))})")
    frame = frame.drop_duplicates(subset=["run_id", *KEY], keep="last").reset_index(drop=True)
    for column in INFERENCE_COLUMNS:  # columns added by later versions read as empty cells (noise: before 2)
        if column not in frame:
            frame[column] = ""
    for column in INFERENCE_NUMERIC:
        frame[column] = pd.to_numeric(frame[column].replace("", None), errors="coerce")
    rows = frame.to_dict("records")
    frame["config_id"] = [config.identity(row) for row in rows]
    frame["config_label"] = [config.label(row) for row in rows]
    frame["point_id"] = [config.identity(row) + (row["backend"], str(int(row["infer_batch_size"])))
                         for row in rows]
    return frame


def inference_beside(results_csv: str | Path) -> Path:
    """Where a sweep's inference.csv is: beside its results.csv."""
    return Path(results_csv).parent / INFERENCE_FILE
