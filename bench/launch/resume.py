"""Resuming a sweep (step: the sweep folder's CSVs -> the configs still to run, and the rows already there).

`--resume` repairs a last row (or header) that a crash or a full disk cut short in results.csv or inference.csv, and
runs every config without a results row, and every finished ok run whose inference points are not all in
inference.csv: a point cut by a crash, backends or batch sizes added to the command since (the inference flags are
part of what a resumed sweep compares), a curve its time limit cut. Such a run's new results row supersedes its old
one for every reader (bench/results/io.py last_of_each_run).
"""

from __future__ import annotations

from pathlib import Path

from bench.core import config as cfg
from bench.core.columns import Status
from bench.core.config import RunConfig
from bench.core.errors import ResultsError, SweepError
from bench.core.inference_columns import (
    INFERENCE_COLUMNS,
    INFERENCE_FILE,
    INFERENCE_NUMERIC,
    INFERENCE_SCHEMA_VERSION,
    KEY,
)
from bench.results.io import checked_rows, read_rows
from bench.results.records import parse_records, repair_partial_last_line


def runs_to_do(configs: list[RunConfig], csv_path: Path, resume: bool) -> tuple[list[RunConfig], list[dict]]:
    """The configs not yet in the CSV (or whose inference points are not all in inference.csv: the module
    docstring), and the rows that are (a partial last line is dropped and re-run)."""
    inference_csv = csv_path.parent / INFERENCE_FILE
    try:
        if resume and repair_partial_last_line(csv_path):
            print(f"dnnbench: {csv_path} ended in a partial row or header (a crash or a full disk mid-write): "
                  "repaired, a run cut there is re-run")
        if resume and repair_partial_last_line(inference_csv, INFERENCE_COLUMNS):
            print(f"dnnbench: {inference_csv} ended in a partial row or header (a crash or a full disk mid-write): "
                  "repaired, a run whose points are missing is re-run")
        done = read_rows(csv_path)
        measured = measured_points(inference_csv) if resume else {}
    except ResultsError as exc:
        raise SweepError(str(exc)) from None
    if done and not resume:
        raise SweepError(f"{csv_path} already has {len(done)} rows: pass --resume to continue that sweep, "
                         "or --out a new folder")
    finished = {cfg.run_key(row): row for row in done}
    todo, again = [], []
    for config in configs:
        row = finished.get(config.key())
        missing = config.curve_missing(measured.get(config.key(), set())) \
            if row is not None and row.get("status") == Status.OK else []
        if row is None or missing:
            todo.append(config)
        if missing:
            again.append(f"{config.label()} ({', '.join(missing)})")
    if resume and len(todo) < len(configs):
        print(f"dnnbench: resuming, {len(configs) - len(todo)} of {len(configs)} runs already in {csv_path}")
    if again:
        print(f"dnnbench: re-running {len(again)} finished run(s) whose inference points are not in {inference_csv}: "
              + "; ".join(again[:5]) + (" ..." if len(again) > 5 else ""))
    return todo, done


def measured_points(csv_path: Path) -> dict[tuple[str, ...], set[tuple[str, str]]]:
    """Each run's (backend, batch size) points in an inference.csv, by run key (`config.run_key`), for --resume:
    which runs' curves are whole. {} when there is none; a file written with other columns is refused (appending
    to it would misalign them)."""
    if not csv_path.exists() or (csv_path.is_file() and csv_path.stat().st_size == 0):
        return {}
    header, records = parse_records(csv_path)
    if header != INFERENCE_COLUMNS:
        raise ResultsError(f"{csv_path}: written with other columns than this dnnbench's inference.csv "
                           f"(schema_version {INFERENCE_SCHEMA_VERSION}): --out a new folder")
    points: dict[tuple[str, ...], set[tuple[str, str]]] = {}
    for row in checked_rows(csv_path, header, records, INFERENCE_NUMERIC, KEY):
        points.setdefault(cfg.run_key(row), set()).add((row["backend"], str(int(float(row["infer_batch_size"])))))
    return points
