"""The sweep's console (step: finished rows and the runs' progress files -> result lines on stdout and a status line
on stderr: redrawn in place on a terminal, plain lines in a log)."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from bench.core.progress import describe, read

PLAIN_EVERY_S = 30.0  # a log (stderr not a terminal) gets a progress line at most this often


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
