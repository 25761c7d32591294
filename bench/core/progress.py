"""Run progress files (step: a child's stage, epoch and step <-> a small file per run, which the sweep's console reads).

The child writes `runs/<run_id>.progress` (JSON, replaced atomically, at most once a second; bench/run/progress.py);
the sweep reads it to show a line that moves inside long runs (bench/launch/console.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.core.private_files import read_own_file, replace_file


def path_for(sweep_dir: Path, run_id: str) -> Path:
    return Path(sweep_dir) / "runs" / f"{run_id}.progress"


def write(path: Path, **fields: Any) -> None:
    """Replace the progress file; progress is best effort and never costs a run."""
    try:
        replace_file(path, json.dumps(fields))
    except OSError:
        pass


def read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(read_own_file(Path(path)))
    except (OSError, ValueError):
        return {}


def describe(progress: dict[str, Any]) -> str:
    """`epoch 2/5 step 130`, `testing`, or `starting` before the child has reported."""
    stage = progress.get("stage")
    if stage == "fit" and "epoch" in progress:
        return f"epoch {progress['epoch'] + 1}/{progress.get('max_epochs', '?')} step {progress.get('step', 0)}"
    return {"test": "testing", "setup": "setting up"}.get(str(stage), "starting")
