"""A results file's records and its last row (step: the CSV text <-> records, and the one rule for a last row that
a crash may have cut, shared by the writer, the readers and `--resume`).

The writer (bench/results/io.py) writes each row as `row_text` does; a reader splits the text into records and
judges the last one with `last_row_fault`: a whole row, a crash's partial write (the only row `--resume` cuts), or a
row no dnnbench writer wrote (refused, never cut).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import shlex
import sys
from pathlib import Path

from bench.core.columns import COLUMNS
from bench.core.errors import ResultsError

# The writer writes a cell of any length (a long --model-arg): the reader must read it back (the csv module stops at
# 131,072 characters by default).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def row_text(cells: list[str]) -> str:
    """One row as the writer writes it: CSV cells with the last one always quoted, then a line break.

    The last cell's closing quote ends the record even when an editor drops the final line break, so a reader can
    tell a whole last row from one that a crash cut short (see `last_row_fault`).
    """
    last = '"' + cells[-1].replace('"', '""') + '"'
    return f"{minimal_text(cells[:-1])},{last}\r\n" if len(cells) > 1 else f"{last}\r\n"


def minimal_text(cells: list[str]) -> str:
    """The cells as a plain CSV writer writes them, without a line break (how older dnnbench wrote a row)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)  # a cell with a line break in it is quoted
    return buffer.getvalue()[:-2]


def line_break_missing(csv_path: Path) -> str:
    """What the file lacks before its next row can start: a line break, part of one, or nothing."""
    with open(csv_path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
    return {b"\n": "", b"\r": "\n"}.get(last, "\r\n")


Record = tuple[int, int, list[str]]  # (offset where it starts in the text, line number where it ends, its cells)


def split_records(text: str) -> list[Record]:
    """Each CSV record of `text` (a quoted cell may span lines); blank lines are records with no cells."""
    consumed = 0

    def lines():
        nonlocal consumed
        for line in io.StringIO(text, newline=""):
            consumed += len(line)
            yield line

    reader = csv.reader(lines())  # the reader pulls lines only until its record is complete
    records, start = [], 0
    for cells in reader:
        records.append((start, reader.line_num, cells))
        start = consumed
    return records


def whole_cell(column: str, cell: str) -> bool:
    """Whether a last cell reads as a complete value of its column (`reproduce`: a command as shlex writes it)."""
    if column != "reproduce":
        return True
    try:
        return shlex.join(shlex.split(cell)) == cell
    except ValueError:  # an open quote: the command was cut
        return False


def last_row_fault(raw: str, cells: list[str], header: list[str]) -> tuple[str, str] | None:
    """The one rule for a file's last record: None when it is a whole row; ("cut", why) when it is provably the
    partial write of a crash (a prefix of what the writer writes: the only row `--resume` may cut); else
    ("refused", why): a row that no dnnbench writer wrote, which is never cut.
    """
    width = len(header)
    if len(cells) > width:
        return "refused", f"{len(cells)} fields where the header has {width}"
    try:
        list(csv.reader(io.StringIO(raw, newline=""), strict=True))
        closed = True
    except csv.Error:  # it ends inside a quoted cell: the writer always closes its quotes
        closed = False
    if closed and raw.endswith(("\n", "\r")):
        if len(cells) == width:
            return None
        return "refused", f"{len(cells)} fields where the header has {width}"
    written = row_text(cells)
    if len(cells) == width and raw == written[:-2] and whole_cell(header[-1], cells[-1]):
        return None  # only the final line break was lost; the closing quote shows the row is whole
    if written.startswith(raw) or (len(cells) < width and raw == minimal_text(cells)):
        return "cut", (f"a partial row ({len(cells)} of {width} fields, no line break: cut by a crash or a full "
                       "disk; `dnnbench run --resume` removes it and re-runs that run)")
    return "refused", ("no line break after the last row and its last cell is not closed by a quote as dnnbench "
                       "writes it, so it may be cut short: if the row is whole, add a line break at the end")


def last_record(text: str) -> tuple[Record | None, str]:
    """The last non-blank record of a CSV text and its raw text (None when there is no row under the header)."""
    records = [record for record in split_records(text) if record[2]]
    if len(records) < 2:
        return None, ""
    start = records[-1][0]
    return records[-1], text[start:]


def repair_partial_last_line(csv_path: Path, columns: list[str] = COLUMNS) -> bool:
    """Cut a last row that a crash or a full disk left unfinished; True if there was one (or a header to finish).

    Only a row that is provably the partial write of a crash is cut (`last_row_fault`); a last row that is whole,
    or malformed in a way the writer cannot produce, stays, and the reader refuses the latter. A header cut short
    (the file holds a prefix of it and nothing else) is finished, never emptied: nothing is lost and what was
    there stays. A file that is not a results CSV of this version is left alone too. `columns`: results.csv's, or
    inference.csv's.
    """
    if not csv_path.exists():
        return False
    if not csv_path.is_file():
        raise ResultsError(f"{csv_path} is not a file")
    data = csv_path.read_bytes()
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    text = data[bom:].decode("utf-8", errors="surrogateescape")
    if "\x00" in text:
        return False  # UTF-16 or binary, not what the writer writes: the reader says so, nothing is cut
    header = ",".join(columns)
    if "\n" not in text and "\r" not in text:
        if not text or not header.startswith(text):
            return False  # empty (the writer starts it), or not this file's header: the reader says why
        with open(csv_path, "ab") as f:  # the header itself was cut: its rest, then the line break
            f.write((header[len(text):] + "\r\n").encode())
            f.flush()
            os.fsync(f.fileno())
        return True
    try:
        record, raw = last_record(text)
    except csv.Error:
        return False  # not a CSV: the reader says why, nothing is cut
    if record is None or split_records(text)[0][2] != columns:
        return False
    fault = last_row_fault(raw, record[2], columns)
    if fault is None or fault[0] != "cut":
        return False
    keep = bom + len(text[:record[0]].encode("utf-8", errors="surrogateescape"))
    with open(csv_path, "rb+") as f:
        f.truncate(keep)
    return True


def parse_records(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line number, cells) of each row of a CSV; ResultsError with a reason if unreadable,
    or if its last row is not whole (`last_row_fault`)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a byte-order mark (Excel) is not a column
            text = f.read()
        records = [record for record in split_records(text) if record[2]]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ResultsError(f"{path}: not a readable CSV ({exc})") from None
    if not records:
        raise ResultsError(f"{path}: not a readable CSV (empty file)")
    if "\x00" in text:  # UTF-16 without a byte-order mark reads as UTF-8 with a NUL after each character
        raise ResultsError(f"{path}: not a readable CSV (NUL characters: UTF-16 or binary; dnnbench writes UTF-8)")
    header = records[0][2]
    if len(records) > 1:
        start, line, cells = records[-1]
        fault = last_row_fault(text[start:], cells, header)
        if fault:
            raise ResultsError(f"{path} line {line}: {fault[1]}")
    return header, [(line, cells) for _, line, cells in records[1:]]
