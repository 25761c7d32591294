"""`--repeats auto` in a sweep (step: a finished row -> its config's next process into the run queue, or its decision
into repeats.csv by the one writer and a console line; a sweep of single processes whose windows disagreed: the note
that says so). The rule itself: bench/core/auto_repeats.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.core import config as cfg
from bench.core.auto_repeats import AutoRepeats, decision_line, rows_of
from bench.core.columns import Status
from bench.core.config import RunConfig
from bench.core.errors import SweepError
from bench.core.repeats_columns import REPEATS_COLUMNS
from bench.results.io import append_row, load_repeats
from bench.results.records import parse_records


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
            console.finished(line)
        self.lines.clear()

    def resumed(self, configs: list[RunConfig], todo: list[RunConfig],
                done: list[dict[str, Any]]) -> list[RunConfig]:
        """The next processes of planned configs already run (a resumed sweep); the decisions it made wait for
        `announce`."""
        waiting = {c.key() for c in todo}
        more = [self.next_run(c, done) for c in configs if c.key() not in waiting and rows_of(c, done)]
        return [c for c in more if c is not None]


def repeats_advice(rows: list[dict[str, Any]], repeats: int) -> str:
    """One line for a sweep of single runs whose speed windows already disagreed: what one process cannot show."""
    from bench.core.stats import UNSTEADY_SPREAD

    unsteady = [r for r in rows if r.get("status") == Status.OK
                and float(r.get("train_samples_per_s_spread") or 0) >= UNSTEADY_SPREAD and r.get("profile") != "smoke"]
    if repeats > 1 or not unsteady:
        return ""
    return (f"dnnbench: note: one process per config, and the speed windows of {len(unsteady)} of {len(rows)} run(s) "
            f"differed by {UNSTEADY_SPREAD:.0%} or more: separate processes of one config can differ as much (10-20 % "
            "on a 2-core VM); --repeats 3 gives that range and lets compare judge it")


def write_decision(path: Path, cells: dict[str, Any]) -> None:
    """A config's decision appended to repeats.csv (a file of other columns is refused, not misaligned)."""
    if path.exists() and path.stat().st_size:
        header, _ = parse_records(path)
        if header != REPEATS_COLUMNS:
            raise SweepError(f"{path}: written with other columns than this dnnbench's repeats.csv: --out a new "
                             "folder")
    append_row(path, cells, REPEATS_COLUMNS)
