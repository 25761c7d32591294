"""The sweep's console (step: finished rows and the runs' progress files -> result lines on stdout and a status line
on stderr: redrawn in place on a terminal, plain lines in a log; the sweep's table at the end).

Every line fits WIDTH columns: a run's result wraps between its parts, never inside a number; the status line is cut
at a word, never mid-word. Runs are named by their model and what varies across the sweep (what is the same for all
of them is said once, in the sweep's first line); numbers are for people (bench/core/numbers.py).
"""

from __future__ import annotations

import shutil
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from bench.core import config as cfg
from bench.core.axes import AXES
from bench.core.columns import Status
from bench.core.numbers import human
from bench.core.progress import describe, read

WIDTH = 120  # every console line fits a 120-column terminal
PLAIN_EVERY_S = 30.0  # a log (stderr not a terminal) gets a progress line at most this often
SEPARATOR = " · "
INDENT = "      "  # a result's continuation lines
LABEL_AT_MOST = 40  # result lines align labels up to this width
Row = Any  # a finished run's RunRow or a CSV row's dict: both read through .get(column)


def fit(text: str, width: int = WIDTH) -> str:
    """`text` cut to `width` at a word boundary, `…` where something was left out."""
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ·|,:") + "…"


def wrap_parts(head: str, parts: list[str], width: int = WIDTH, indent: str = INDENT) -> str:
    """`head` then `parts` joined by ` · `, wrapped between parts onto indented lines that fit `width` (a part longer
    than a line is wrapped at its words)."""
    lines, line = [], head
    for part in parts:
        joined = f"{line}{SEPARATOR}{part}" if line.strip() and line != head else f"{line}  {part}".rstrip()
        if len(joined) <= width:
            line = joined
            continue
        if line.strip():
            lines.append(line)
        chunks = textwrap.wrap(part, width - len(indent), break_on_hyphens=False) or [""]
        lines += [indent + chunk for chunk in chunks[:-1]]
        line = indent + chunks[-1]
    lines.append(line)
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """`42 s`, `3:05`, `1:02:09`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def constant_axes(rows: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The config columns whose label reads the same in every row (left out of each run's name)."""
    rows = list(rows)
    return tuple(axis.csv for axis in AXES if axis.csv and axis.name != "model"
                 and len({axis.label_text(row) for row in rows}) <= 1)


class Console:
    """The sweep's console: one result line per finished run on stdout; on stderr, what is running and how far."""

    def __init__(self, total: int, show: bool = True, stream: TextIO | None = None,
                 configs: list[Any] | None = None, more_processes: bool = False):
        self.total, self.finished_count, self.show = total, 0, show
        self.stream = stream or sys.stderr
        self.tty = self.show and self.stream.isatty()
        self.announced: set[str] = set()
        self.last_plain, self.last_plain_at, self.drawn = "", time.monotonic(), False
        self.started = self.last_finish = time.monotonic()
        self.same = constant_axes(c.columns() for c in configs) if configs else ()
        # repeats (or --repeats auto's further processes, `more_processes`): a label alone names them all alike
        self.seeds = more_processes or len({c.seed for c in configs or []}) > 1
        self.label_width = min(LABEL_AT_MOST, max((len(self.name(c)) for c in configs or []), default=0))

    def name(self, config: Any) -> str:
        """The run's model and what varies across the sweep (`cnn bf16-mixed bs64`, `cnn seed 2`)."""
        return cfg.label(config.columns(), leave_out=self.same) + (f" seed {config.seed}" if self.seeds else "")

    def progress_text(self) -> str:
        """`[3/24] 2:15, ETA 8:30`: runs done, time since the sweep started, and (once a run has finished) the time
        the plan's remaining runs take at the pace so far."""
        now = time.monotonic()
        text = f"[{self.finished_count}/{self.total}] {duration(now - self.started)}"
        if self.finished_count and self.finished_count < self.total:
            per_run = (self.last_finish - self.started) / self.finished_count
            left = per_run * (self.total - self.finished_count) - (now - self.last_finish)
            text += f", ETA {duration(max(left, 0.0))}"
        return text

    def status(self, running: list[tuple[Any, str, Path]]) -> str:
        # how far first: a narrow terminal cuts the label's end, not the moving part
        parts = [f"{describe(read(progress))}: {self.name(config)} [{devices}]"
                 for config, devices, progress in running]
        return f"dnnbench {self.progress_text()} · " + " | ".join(parts)

    def tick(self, running: list[tuple[Any, str, Path]]) -> None:
        """`running`: (config, devices it runs on, its progress file) of each run in flight."""
        if not self.show:
            return
        for config, devices, _ in running:
            if config.run_id not in self.announced and not self.tty:
                print(fit(f"dnnbench: start {self.name(config)} [{devices}]"), file=self.stream, flush=True)
            self.announced.add(config.run_id)
        line = self.status(running) if running else ""
        if self.tty:
            width = min(WIDTH, shutil.get_terminal_size().columns - 1)
            print("\r\x1b[K" + fit(line, width), end="", file=self.stream, flush=True)
            self.drawn = bool(line)
        elif line and line != self.last_plain and time.monotonic() - self.last_plain_at >= PLAIN_EVERY_S:
            print(fit(line), file=self.stream, flush=True)
            self.last_plain, self.last_plain_at = line, time.monotonic()

    def clear(self) -> None:
        if self.drawn:
            print("\r\x1b[K", end="", file=self.stream, flush=True)
            self.drawn = False

    def note(self, line: str) -> None:
        """A line of the sweep's own (stdout, at most WIDTH), under the status line rather than through it."""
        self.clear()
        print(textwrap.fill(line, WIDTH, subsequent_indent=INDENT, break_on_hyphens=False), flush=True)

    def finished(self, config: Any, row: Row) -> None:
        """A finished run's result line (stdout), under the status line rather than through it."""
        self.finished_count += 1
        self.last_finish = time.monotonic()
        self.clear()
        print(result_line(f"  {self.name(config):<{self.label_width}}  {row.get('status')}", row), flush=True)


def result_line(head: str, row: Row) -> str:
    """A finished run in lines of at most WIDTH: its name and status, then quality, speed and latency (or why it
    failed, whole), and a warning line when it shared its device."""
    if row.get("status") != Status.OK:  # the reason whole: its fix comes last
        text = textwrap.fill(f"{head}  {row.get('message', '') or ''}", WIDTH, subsequent_indent=INDENT,
                             break_on_hyphens=False)
    else:
        text = wrap_parts(head, console_parts(row))
    if row.get("noise_warning"):
        text += "\n" + textwrap.fill(f"warning: {row.get('noise_warning')}", WIDTH, initial_indent="    ",
                                     subsequent_indent=INDENT, break_on_hyphens=False)
    return text


def present(value: Any) -> bool:
    return value not in (None, "") and human(value) != ""


def console_parts(row: Row) -> list[str]:
    """An ok run's numbers with their units: `val acc 0.931 ≥ 0.93 at 1.25 s`, `test acc 0.922`,
    `train 14,100 · infer 1.28 M samples/s`, `p50 0.05 ms @ bs64`, `wall 12.3 s`."""
    parts = []
    if present(row.get("metric_value")) or row.get("reached_target") in ("yes", "no"):
        parts += [part for part in (target_text(row), f"test {row.get('metric_name')} {human(row.get('metric_value'))}")
                  if part]
    speeds = [f"{name} {human(row.get(column))}" for column, name in
              (("train_samples_per_s", "train"), ("infer_samples_per_s", "infer")) if present(row.get(column))]
    if speeds:
        parts.append(SEPARATOR.join(speeds) + " samples/s")
    if present(row.get("latency_p50_ms")):
        parts.append(f"p50 {human(row.get('latency_p50_ms'))} ms @ bs{row.get('batch_size')}")
    parts.append(f"wall {human(row.get('wall_s') or 0)} s")
    return parts


def target_text(row: Row) -> str:
    """`val acc 0.971 ≥ 0.97 at 4.31 s` or `val acc 0.95 < 0.97 in 2 epochs`: whether the run got there, on the
    validation value the target was judged on (the test value beside it may sit either side); empty without a
    target."""
    if row.get("reached_target") not in ("yes", "no"):
        return ""
    target, judged = human(row.get("metric_target")), row.get("target_metric_value")
    reached, below = ("≤", ">") if row.get("metric_direction") == "min" else ("≥", "<")
    val = f"val {row.get('metric_name')}" + (f" {human(judged)}" if present(judged) else "")
    if row.get("reached_target") == "no":
        epochs = row.get("epochs")
        count = human(epochs) if present(epochs) else ""
        return f"{val} {below} {target}" + (f" in {count} epoch{'' if count == '1' else 's'}" if count else "")
    return f"{val} {reached} {target} at {human(row.get('time_to_target_s'))} s"


def common_label(configs: list[Any]) -> str:
    """What every run of the sweep shares (`mnist5k cpu 32-true bs128 quick`), said once in its first line."""
    if not configs:
        return ""
    same = constant_axes(c.columns() for c in configs)
    varying = tuple(axis.csv for axis in AXES if axis.csv and axis.csv not in same)
    return cfg.label(configs[0].columns(), leave_out=varying)


def shown_path(path: Path) -> str:
    """A path as short as it reads unambiguously: relative to the working directory when inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)
