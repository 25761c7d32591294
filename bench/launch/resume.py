"""Resuming a sweep (step: the sweep folder's CSVs -> the configs still to run, and the rows already there).

`--resume` repairs a last row (or header) that a crash or a full disk cut short in results.csv or inference.csv, and
runs every config without a results row, and every finished ok run whose inference points are not all in
inference.csv: a point cut by a crash, backends or batch sizes added to the command since (the inference flags are
part of what a resumed sweep compares). Such a run's new results row supersedes its old one for every reader
(bench/results/io.py last_of_each_run). A run that its own time limit cut (a `timeout` row, or `timeout` points: its
curve stopped at the limit, or was killed there, bench/launch/child_process.py) is what an interruption does not
explain: under the same limit it would be cut again, so it runs again only under a larger `--time-limit` than the
one its `reproduce` names.
"""

from __future__ import annotations

import shlex
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
    todo, again, longer, kept = [], [], [], []
    for config in configs:
        row = finished.get(config.key())
        if row is None:
            todo.append(config)
            continue
        points = measured.get(config.key(), {})
        missing = config.curve_missing(set(points)) if row.get("status") == Status.OK else []
        cut = limit_cut(row, points) if not missing else ""
        limit = ran_under(row) if cut else None
        if cut and (limit is None or config.time_limit_s <= limit):
            kept.append(f"{config.label()} ({cut}{f' at {limit:g} s' if limit is not None else ''})")
            continue
        if missing or cut:
            todo.append(config)
        if missing:
            again.append(f"{config.label()} ({', '.join(missing)})")
        if cut:
            longer.append(f"{config.label()} ({cut} at {limit:g} s, now {config.time_limit_s:g} s)")
    if resume and len(todo) < len(configs):
        print(f"dnnbench: resuming, {len(configs) - len(todo)} of {len(configs)} runs already in {csv_path}")
    if again:
        print(f"dnnbench: re-running {len(again)} finished run(s) whose inference points are not in {inference_csv}: "
              + listed(again))
    if longer:
        print(f"dnnbench: re-running {len(longer)} run(s) that their time limit cut, under the longer one given now: "
              + listed(longer))
    if kept:
        print(f"dnnbench: not re-running {len(kept)} run(s) that their own time limit cut (a larger --time-limit "
              "runs them again): " + listed(kept))
    return todo, done


def listed(runs: list[str]) -> str:
    return "; ".join(runs[:5]) + (" ..." if len(runs) > 5 else "")


def limit_cut(row: dict, points: dict[tuple[str, str], str]) -> str:
    """What of a finished run its own time limit cut: `timeout` (the run), or its inference points it did not
    measure (`backend bsN`, status timeout: the curve stopped at the limit or was killed there); "" for none."""
    if row.get("status") == Status.TIMEOUT:
        return "timeout"
    return ", ".join(f"{backend} bs{size}" for (backend, size), status in points.items() if status == Status.TIMEOUT)


def ran_under(row: dict) -> float | None:
    """The time limit a results row's run ran under (its `reproduce` command names it); None where it does not."""
    args = shlex.split(row.get("reproduce") or "")
    try:
        return float(args[args.index("--time-limit") + 1])
    except (ValueError, IndexError):
        return None


def measured_points(csv_path: Path) -> dict[tuple[str, ...], dict[tuple[str, str], str]]:
    """Each run's (backend, batch size) points in an inference.csv with their status (the last run's), by run key
    (`config.run_key`), for --resume: which runs' curves are whole, and which the time limit cut. {} when there is
    none; a file written with other columns is refused (appending to it would misalign them)."""
    if not csv_path.exists() or (csv_path.is_file() and csv_path.stat().st_size == 0):
        return {}
    header, records = parse_records(csv_path)
    if header != INFERENCE_COLUMNS:
        raise ResultsError(f"{csv_path}: written with other columns than this dnnbench's inference.csv "
                           f"(schema_version {INFERENCE_SCHEMA_VERSION}): --out a new folder")
    points: dict[tuple[str, ...], dict[tuple[str, str], str]] = {}
    for row in checked_rows(csv_path, header, records, INFERENCE_NUMERIC, KEY):
        point = (row["backend"], str(int(float(row["infer_batch_size"]))))
        points.setdefault(cfg.run_key(row), {})[point] = row["status"]
    return points
