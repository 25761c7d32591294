"""The gpu-check bundle (step: the steps' work folder -> OUT's files, at most 8: results.csv, overhead.csv, steps.csv,
summary.md, check.txt, pytest.txt, logs.txt; verdict.md is benchmarks/gpu_check_verdict.py's)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

OVERHEAD_FIELDS = ("model", "size", "device", "status", "runner", "bare", "expert", "device_cost",
                   "expert_device_cost", "runner_over_bare", "device_over_expert", "runner_over_expert", "spread",
                   "message")


def merge_results(csvs: list[Path], target: Path) -> None:
    """Every sweep's rows in one CSV (one dnnbench wrote them all: the same columns)."""
    import pandas as pd

    frames = [pd.read_csv(path, dtype=str, keep_default_na=False) for path in csvs if path.exists()]
    if frames:
        pd.concat(frames, ignore_index=True).to_csv(target, index=False)


def failed_logs(work: Path, target: Path, lines: int = 30) -> None:
    """The log tails of every run whose row is not ok, and of every step's own output."""
    import json

    parts = []
    for result in sorted(work.glob("*/runs/*.json")):
        try:
            row = json.loads(result.read_text())
        except (OSError, ValueError):
            continue
        log = result.with_name(result.name.removesuffix(".json") + ".log")
        if isinstance(row, dict) and row.get("status") not in ("ok", None) and log.exists():
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"## {result.parent.parent.name}/{log.name}: {row.get('status')}\n" + "\n".join(tail))
    for log in sorted(work.glob("*.log")):
        parts.append(f"## step output {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
    target.write_text("\n\n".join(parts) + "\n")


def write_csv(path: Path, rows: list[dict], fields: tuple[str, ...] | list[str]) -> None:
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def pack(out: Path, work: Path, csvs: list[Path], overhead: list[dict], steps: list[dict]) -> Path:
    """OUT gets the bundle's files (at most 8); returns results.csv's path."""
    results = out / "results.csv"
    merge_results(csvs, results)
    write_csv(out / "overhead.csv", overhead, OVERHEAD_FIELDS)
    write_csv(out / "steps.csv", steps, ("step", "command", "exit_code", "seconds", "estimate_s", "summary"))
    for name in ("check.txt", "pytest.txt"):
        if (work / name).exists():
            shutil.copy(work / name, out / name)
    failed_logs(work, out / "logs.txt")
    if results.exists():
        try:
            from bench.report.page import write_report

            write_report([results], work / "report")
            shutil.copy(work / "report" / "summary.md", out / "summary.md")
        except Exception as exc:  # the verdict and the CSVs still come back
            (out / "summary.md").write_text(f"report failed: {exc}\n")
    return results
