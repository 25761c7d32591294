"""The one results CSV reader and writer (step: rows to disk, and back for resume, report, compare and W&B)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import config
from bench.axes import AXES
from bench.columns import COLUMNS, NUMERIC, READABLE_SCHEMA_VERSIONS, SCHEMA_VERSION, Status
from bench.errors import ResultsError
from bench.row import RunRow

if TYPE_CHECKING:  # pandas loads only where results are read back (the child writes its row without it)
    import pandas as pd

KNOWN = frozenset(COLUMNS)


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


class UnknownColumnError(ValueError):
    """A row names a column the table does not have (a misspelt field would otherwise be an empty column)."""


def strict_columns() -> bool:
    """Tests (and anyone who sets DNNBENCH_STRICT_COLUMNS=1) make an unknown column an error; a real sweep keeps the
    row, says so on stderr and in `message`: a measurement must never cost a row, nor vanish silently."""
    return os.environ.get("DNNBENCH_STRICT_COLUMNS", "") not in ("", "0")


def unknown_columns(names: Iterable[str], where: str) -> list[str]:
    unknown = sorted(set(names) - KNOWN)
    if unknown and strict_columns():
        raise UnknownColumnError(f"{where} names columns that are not in bench/columns.py: {', '.join(unknown)}")
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


def as_cells(row: dict[str, Any]) -> dict[str, str]:
    unknown_columns(row, "a results row")
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


def record_starts(text: str) -> list[tuple[int, list[str]]]:
    """Each CSV record of `text` with the character offset where it starts (a quoted cell may span lines)."""
    consumed = 0

    def lines():
        nonlocal consumed
        for line in io.StringIO(text, newline=""):
            consumed += len(line)
            yield line

    records, start = [], 0
    for record in csv.reader(lines()):  # the reader pulls lines only until its record is complete
        records.append((start, record))
        start = consumed
    return records


def complete_length(data: bytes) -> int:
    """How many leading bytes of a results CSV are whole rows (all of them when it is not ours to repair)."""
    text = data.decode("utf-8", errors="surrogateescape")
    header = ",".join(COLUMNS)
    if "\n" not in text:
        return 0 if header.startswith(text.rstrip("\r")) else len(data)  # the header itself was cut
    try:
        records = record_starts(text)
    except csv.Error:
        return len(data)  # not a CSV: the reader says why, nothing is cut
    if records[0][1] != COLUMNS or len(records) < 2:
        return len(data)
    start, last = records[-1]
    if text.endswith("\n") and len(last) == len(COLUMNS):
        return len(data)
    return len(text[:start].encode("utf-8", errors="surrogateescape"))


def repair_partial_last_line(csv_path: Path) -> bool:
    """Cut a last row that a crash or a full disk left unfinished; True if there was one.

    Every row is written with its line ending in one write, so a row without one (or with too few cells, when the
    cut fell after a line break inside a quoted cell) was never finished: it is dropped, and its run re-run on
    resume, rather than glued to the next row. A file that is not a results CSV of this version is left alone.
    """
    if not csv_path.exists():
        return False
    if not csv_path.is_file():
        raise ResultsError(f"{csv_path} is not a file")
    data = csv_path.read_bytes()
    keep = complete_length(data)
    if keep == len(data):
        return False
    with open(csv_path, "rb+") as f:
        f.truncate(keep)
    return True


def parse_records(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line number, cells) of each row of a CSV; ResultsError with a reason if unreadable."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            records = [(reader.line_num, cells) for cells in reader if cells]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ResultsError(f"{path}: not a readable CSV ({exc})") from None
    if not header:
        raise ResultsError(f"{path}: not a readable CSV (empty file)")
    return header, records


def checked_rows(path: Path, header: list[str], records: list[tuple[int, list[str]]]) -> list[dict[str, str]]:
    """Rows as {column: cell}, each with its number of cells, a known status and numbers where numbers belong."""
    numeric = [column for column in NUMERIC if column in header]
    statuses = {status.value for status in Status}
    rows = []
    for line, cells in records:
        where = f"{path} line {line}"
        if len(cells) != len(header):
            raise ResultsError(f"{where}: {len(cells)} fields where the header has {len(header)} (a row cut short "
                               "by a crash or a full disk? `dnnbench run --resume` repairs a partial last row)")
        row = dict(zip(header, cells))
        if "status" in row and row["status"] not in statuses:
            raise ResultsError(f"{where}: unknown status {row['status']!r} (known: {', '.join(sorted(statuses))})")
        for column in numeric:
            try:
                float(row[column] or 0)
            except ValueError:
                raise ResultsError(f"{where}: {column} {row[column][:40]!r} is not a number") from None
        rows.append(row)
    return rows


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
        found = dict(zip(header, records[0][1])).get("schema_version") if records else None
        raise ResultsError(f"{csv_path} was written with other columns (schema_version {found or '?'}; this "
                           f"dnnbench writes {SCHEMA_VERSION}): appending would misalign them; --out a new folder")
    return checked_rows(csv_path, header, records)


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
    for column in COLUMNS:  # columns added by later schemas read as empty cells (other_metrics: before 2)
        if column not in frame:
            frame[column] = ""
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
