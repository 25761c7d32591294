"""`--repeats auto` in a sweep (step: a finished row -> its config's next process into the run queue, or its decision
into repeats.csv by the one writer and a console line; a sweep of single processes whose windows disagreed: the note
that says so). The rule itself: bench/core/auto_repeats.py."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path
from typing import Any

from bench.core import config as cfg
from bench.core.auto_repeats import AutoRepeats, decision_line, rows_of
from bench.core.columns import Status
from bench.core.config import RunConfig
from bench.core.errors import SweepError
from bench.core.repeats_columns import REPEATS_COLUMNS
from bench.results.io import append_row
from bench.results.records import parse_records
from bench.results.repeats import load_repeats


class RepeatSchedule:
    """A sweep's `--repeats auto` bookkeeping: after each finished row, the config's next process into the queue or
    its decision (appended to repeats.csv by the one writer, and a console line); on --resume, the configs whose
    decision is still open. Without --repeats auto (`auto` None) it adds nothing."""

    def __init__(self, auto: AutoRepeats | None, repeats_csv: Path):
        self.auto, self.path, self.lines = auto, repeats_csv, []  # type: AutoRepeats | None, Path, list[str]
        self.decided = set(load_repeats(repeats_csv)["config_id"]) if auto and repeats_csv.exists() else set()

    def next_run(self, config: RunConfig, done: list[dict[str, Any]]) -> RunConfig | None:
        """The config's next process, or None once decided (its decision written, its line kept for the console)."""
        key = cfg.identity(config.columns())
        if self.auto is None or key in self.decided:
            return None
        rows = rows_of(config, done)
        outcome = self.auto.outcome(config, rows)
        if outcome is None:
            return self.auto.next_run(config, rows)
        self.decided.add(key)
        cells = self.auto.decision(config, rows, outcome)
        write_decision(self.path, cells)
        self.lines.append(decision_line(config.label(), cells))
        return None

    def after(self, config: RunConfig, done: list[dict[str, Any]], queue: Any, console: Any) -> None:
        """A finished row of `config`: its next process into the sweep's queue (and count), or its decision's line."""
        following = self.next_run(config, done)
        if following is not None:
            queue.add(following)
            console.total += 1
        self.announce(console)

    def announce(self, console: Any) -> None:
        for line in self.lines:
            console.note(line)
        self.lines.clear()

    def resumed(self, configs: list[RunConfig], todo: list[RunConfig],
                done: list[dict[str, Any]]) -> list[RunConfig]:
        """The next processes of planned configs already run (a resumed sweep); the decisions it made wait for
        `announce`."""
        waiting = {c.key() for c in todo}
        more = [self.next_run(c, done) for c in configs if c.key() not in waiting and rows_of(c, done)]
        return [c for c in more if c is not None]


def repeats_advice(rows: list[dict[str, Any]], repeats: int) -> str:
    """For a sweep of single runs, a note when it cannot draw a conclusion it was run for: two configs one setting
    apart whose train throughputs are closer than their speed windows' spread (bench/core/stats.py UNSTEADY_SPREAD).
    Empty otherwise: an unsteady run alone changes no comparison."""
    from bench.core.stats import closer_than_spread

    def speed(row: dict[str, Any]) -> tuple[float, float] | None:
        try:
            return float(row["train_samples_per_s"]), float(row.get("train_samples_per_s_spread") or 0)
        except (KeyError, TypeError, ValueError):
            return None

    ok = [r for r in rows if r.get("status") == Status.OK and r.get("profile") != "smoke" and speed(r)]
    if repeats > 1:
        return ""
    close = []
    for axis in cfg.IDENTITY:  # rows alike in every other axis, in buckets: linear in the rows, not quadratic
        buckets: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in ok:
            rest = tuple(str(row.get(other, "")) for other in cfg.IDENTITY if other != axis)
            buckets.setdefault(rest, []).append(row)
        pairs = [(a, b) for bucket in buckets.values() for a, b in itertools.combinations(bucket, 2)
                 if str(a.get(axis, "")) != str(b.get(axis, ""))]
        for a, b in pairs:
            (speed_a, spread_a), (speed_b, spread_b) = speed(a), speed(b)  # type: ignore[misc]
            if not closer_than_spread(speed_a, speed_b, spread_a, spread_b):
                continue
            pair = f"{a[axis]} from {b[axis]}" if axis == "model" else f"{a['model']} {a[axis]} from {b[axis]}"
            close.append(f"{pair} (train speeds {abs(speed_a - speed_b) / min(speed_a, speed_b) * 100:.0f} % "
                         f"apart, their speed windows {max(spread_a, spread_b) * 100:.0f} %)")
    if not close:
        return ""
    many = f"{len(close)} pairs one setting apart, e.g. " if len(close) > 1 else ""
    return textwrap.fill(f"dnnbench: note: one run per config cannot tell {many}{close[0]}: --repeats 3 measures "
                         "the range and lets compare judge it", 120,
                         subsequent_indent="  ", break_on_hyphens=False)


def write_decision(path: Path, cells: dict[str, Any]) -> None:
    """A config's decision appended to repeats.csv (a file of other columns is refused, not misaligned)."""
    if path.exists() and path.stat().st_size:
        header, _ = parse_records(path)
        if header != REPEATS_COLUMNS:
            raise SweepError(f"{path}: written with other columns than this dnnbench's repeats.csv: --out a new "
                             "folder")
    append_row(path, cells, REPEATS_COLUMNS)
