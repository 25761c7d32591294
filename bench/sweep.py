"""Run a list of configs, each in its own child process with a time limit, appending one CSV row per run."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.config import RunConfig, key_of_row
from bench.schema import COLUMNS, SCHEMA_VERSION


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    if not csv_path.exists() or csv_path.stat().st_size == 0:
        return []
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def append_row(csv_path: Path, row: dict[str, Any]) -> None:
    """Append and flush to disk at once: a sweep killed at any moment keeps every finished row."""
    new_file = not csv_path.exists() or csv_path.stat().st_size == 0
    with open(csv_path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        writer.writerow({k: format_cell(row.get(k)) for k in COLUMNS})
        f.flush()
        os.fsync(f.fileno())


def format_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def run_child(config: RunConfig, sweep_dir: Path) -> dict[str, Any]:
    """Start `python -m bench.run_one` for one config; kill it at the time limit; always return a row."""
    runs = sweep_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    config_path, result_path = runs / f"{config.run_id}.config.json", runs / f"{config.run_id}.json"
    log_path = runs / f"{config.run_id}.log"
    config_path.write_text(json.dumps(config.to_dict()))
    result_path.unlink(missing_ok=True)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        # A new session, so a timeout kills the whole process group (DDP ranks included).
        child = subprocess.Popen([sys.executable, "-m", "bench.run_one", str(config_path), str(result_path)],
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                 cwd=Path(__file__).resolve().parent.parent)
        try:
            child.wait(timeout=config.time_limit_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            timed_out = True
    if result_path.exists():
        return json.loads(result_path.read_text())
    row = config.columns() | {"schema_version": SCHEMA_VERSION, "reproduce": config.reproduce(),
                              "wall_s": time.perf_counter() - started}
    if timed_out:
        row.update(status="timeout", message=f"killed after the {config.time_limit_s:g} s time limit")
    else:
        last = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()][-1:]
        row.update(status="error", message=f"run process exited with code {child.returncode}"
                   + (f": {last[0].strip()[:400]}" if last else ""))
    return row


def fill_quality_drift(row: dict[str, Any], done: list[dict[str, Any]]) -> None:
    """quality_drift = this row's metric minus the same config's 32-true metric (both in this sweep)."""
    if row.get("precision") == "32-true" or row.get("metric_value") in (None, ""):
        return
    key = key_of_row(row | {"precision": "32-true"})
    for other in done:
        if key_of_row(other) == key and other.get("metric_value") not in (None, ""):
            row["quality_drift"] = float(row["metric_value"]) - float(other["metric_value"])
            return


def run_sweep(configs: list[RunConfig], sweep_dir: Path, resume: bool, progress: bool = True) -> list[dict]:
    csv_path = sweep_dir / "results.csv"
    done = read_rows(csv_path)
    if done and not resume:
        raise FileExistsError(f"{csv_path} already has {len(done)} rows: pass --resume to continue that sweep, "
                              "or --out a new folder")
    if done and list(done[0]) != COLUMNS:
        raise FileExistsError(f"{csv_path} was written with other columns (schema_version "
                              f"{done[0].get('schema_version') or '?'}; this dnnbench writes {SCHEMA_VERSION}): "
                              "appending would misalign them; --out a new folder")
    finished = {key_of_row(r) for r in done}
    todo = [c for c in configs if c.key() not in finished]
    if resume and len(todo) < len(configs):
        print(f"dnnbench: resuming, {len(configs) - len(todo)} of {len(configs)} runs already in {csv_path}")
    from tqdm.auto import tqdm

    bar = tqdm(todo, desc="dnnbench", unit="run", disable=not progress, file=sys.stderr)
    for config in bar:
        bar.set_postfix_str(f"{config.model} {config.device_spec} {config.precision}")
        row = run_child(config, sweep_dir)
        fill_quality_drift(row, done)
        append_row(csv_path, row)
        done.append({k: format_cell(row.get(k)) for k in COLUMNS})
        bar.write(f"  {config.model:12s} {config.device_spec:7s} {config.precision:10s} {row['status']:11s} "
                  f"{_short(row)}")
    return done


def _short(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return str(row.get("message", ""))[:100]
    parts = []
    if row.get("metric_value") not in (None, ""):
        parts.append(f"{row['metric_name']}={float(row['metric_value']):.4g}")
    if row.get("train_samples_per_s"):
        parts.append(f"train {float(row['train_samples_per_s']):.0f}/s")
    parts.append(f"{float(row.get('wall_s') or 0):.0f}s")
    return " ".join(parts)
