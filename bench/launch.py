"""Launching (step: one config -> one child process with a time limit -> its row, or a fallback row).

The child runs in the sweep's own environment: the same working directory, and the parent's `sys.path` handed
over in the job file, so a model given by import path from the user's folder resolves in the child too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.columns import SCHEMA_VERSION, Status
from bench.config import RunConfig


def job_paths(config: RunConfig, sweep_dir: Path) -> dict[str, Path]:
    runs = sweep_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    return {"job": runs / f"{config.run_id}.config.json", "result": runs / f"{config.run_id}.json",
            "log": runs / f"{config.run_id}.log"}


def fallback_row(config: RunConfig, status: Status, message: str, wall_s: float) -> dict[str, Any]:
    """The row of a run whose child wrote none (killed at its time limit, crashed, lost)."""
    return config.columns() | {"status": status, "message": message, "schema_version": SCHEMA_VERSION,
                               "reproduce": config.reproduce(), "wall_s": wall_s}


def last_log_line(log_path: Path) -> str:
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:400] if lines else ""


def run_child(config: RunConfig, sweep_dir: Path) -> dict[str, Any]:
    """Start `python -m bench.child` for one config; kill it at the time limit; always return a row."""
    sweep_dir = Path(sweep_dir).resolve()
    paths = job_paths(config, sweep_dir)
    paths["job"].write_text(json.dumps({"config": config.to_dict(), "sweep_dir": str(sweep_dir),
                                        "result_path": str(paths["result"]),
                                        "sys_path": [os.path.abspath(p or ".") for p in sys.path]}))
    paths["result"].unlink(missing_ok=True)
    started = time.perf_counter()
    with open(paths["log"], "w") as log:
        # A new session, so a timeout kills the whole process group (DDP ranks included).
        child = subprocess.Popen([sys.executable, "-m", "bench.child", str(paths["job"])],
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            child.wait(timeout=config.time_limit_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            timed_out = True
    if paths["result"].exists():
        return json.loads(paths["result"].read_text())
    wall = time.perf_counter() - started
    if timed_out:
        return fallback_row(config, Status.TIMEOUT, f"killed after the {config.time_limit_s:g} s time limit", wall)
    last = last_log_line(paths["log"])
    return fallback_row(config, Status.ERROR, f"run process exited with code {child.returncode}"
                        + (f": {last}" if last else ""), wall)


def devices_here() -> list[str]:
    """The devices runs can be launched on from this machine."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda" if torch.cuda.device_count() == 1 else f"cuda ({torch.cuda.device_count()} GPUs)")
    return found
