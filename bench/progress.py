"""Run progress (step: a child's stage, epoch and step -> a small file per run -> the sweep's console lines).

The child writes `runs/<run_id>.progress` (JSON, replaced atomically, at most once a second); the sweep reads it
to show a line that moves inside long runs: redrawn in place on a terminal, plain lines in a log.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import lightning as L

PLAIN_EVERY_S = 30.0  # a log (stderr not a terminal) gets a progress line at most this often


def path_for(sweep_dir: Path, run_id: str) -> Path:
    return Path(sweep_dir) / "runs" / f"{run_id}.progress"


def write(path: Path, **fields: Any) -> None:
    """Replace the progress file; progress is best effort and never costs a run."""
    try:
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(fields))
        tmp.replace(path)
    except OSError:
        pass


def read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def describe(progress: dict[str, Any]) -> str:
    """`epoch 2/5 step 130`, `testing`, or `starting` before the child has reported."""
    stage = progress.get("stage")
    if stage == "fit" and "epoch" in progress:
        return f"epoch {progress['epoch'] + 1}/{progress.get('max_epochs', '?')} step {progress.get('step', 0)}"
    return {"test": "testing", "setup": "setting up"}.get(str(stage), "starting")


class ProgressFile(L.Callback):
    """Writes the run's stage, epoch and step for the sweep's console (rank 0; a clock read per batch at most)."""

    def __init__(self, path: Path, every_s: float = 1.0):
        self.path, self.every_s, self.next_at = Path(path), every_s, 0.0

    def report(self, trainer: L.Trainer, stage: str) -> None:
        if trainer.is_global_zero:
            write(self.path, pid=os.getpid(), stage=stage, epoch=trainer.current_epoch,
                  max_epochs=trainer.max_epochs, step=trainer.global_step)
            self.next_at = time.monotonic() + self.every_s

    def on_train_start(self, trainer, pl_module) -> None:
        self.report(trainer, "fit")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if time.monotonic() >= self.next_at:
            self.report(trainer, "fit")

    def on_test_start(self, trainer, pl_module) -> None:
        self.report(trainer, "test")


class Console:
    """The sweep's console: one result line per finished run on stdout; on stderr, what is running and how far."""

    def __init__(self, total: int, show: bool = True, stream: TextIO | None = None):
        self.total, self.finished_count, self.show = total, 0, show
        self.stream = stream or sys.stderr
        self.tty = self.show and self.stream.isatty()
        self.announced: set[str] = set()
        self.last_plain, self.last_plain_at, self.drawn = "", time.monotonic(), False

    def status(self, running: list[tuple[Any, str, Path]]) -> str:
        # how far first: a narrow terminal cuts the label's end, not the moving part
        parts = [f"{describe(read(progress))}: {config.label()} [{devices}]" for config, devices, progress in running]
        return f"dnnbench [{self.finished_count}/{self.total}] " + " | ".join(parts)

    def tick(self, running: list[tuple[Any, str, Path]]) -> None:
        """`running`: (config, devices it runs on, its progress file) of each run in flight."""
        if not self.show:
            return
        for config, devices, _ in running:
            if config.run_id not in self.announced and not self.tty:
                print(f"dnnbench: start {config.label()} [{devices}]", file=self.stream, flush=True)
            self.announced.add(config.run_id)
        line = self.status(running) if running else ""
        if self.tty:
            width = shutil.get_terminal_size().columns - 1
            print("\r\x1b[K" + line[:width], end="", file=self.stream, flush=True)
            self.drawn = bool(line)
        elif line and line != self.last_plain and time.monotonic() - self.last_plain_at >= PLAIN_EVERY_S:
            print(line, file=self.stream, flush=True)
            self.last_plain, self.last_plain_at = line, time.monotonic()

    def clear(self) -> None:
        if self.drawn:
            print("\r\x1b[K", end="", file=self.stream, flush=True)
            self.drawn = False

    def finished(self, line: str) -> None:
        """A finished run's result line (stdout), under the status line rather than through it."""
        self.finished_count += 1
        self.clear()
        print(line, flush=True)
