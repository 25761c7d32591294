"""`--repeats auto` in a sweep (step: a finished row -> its config's next process into the run queue, or its decision
into repeats.csv by the one writer and a console line). The rule itself: bench/core/auto_repeats.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.core import config as cfg
from bench.core.auto_repeats import AutoRepeats, decision_line, rows_of
from bench.core.config import RunConfig
from bench.core.errors import SweepError
from bench.core.repeats_columns import REPEATS_COLUMNS
from bench.results.io import append_row, load_repeats
from bench.results.records import parse_records


class RepeatSchedule:
    """A sweep's `--repeats auto` bookkeeping: after each finished row, the config's next process or its decision
    (appended to repeats.csv by the one writer); on --resume, the configs whose decision is still open."""

    def __init__(self, auto: AutoRepeats, repeats_csv: Path):
        self.auto, self.path = auto, repeats_csv
        self.decided = set(load_repeats(repeats_csv)["config_id"]) if repeats_csv.exists() else set()

    def after(self, config: RunConfig, done: list[dict[str, Any]]) -> tuple[RunConfig | None, str]:
        """(the config's next process or None, the console line of its decision or "")."""
        key = cfg.identity(config.columns())
        if key in self.decided:
            return None, ""
        rows = rows_of(config, done)
        outcome = self.auto.outcome(config, rows)
        if outcome is None:
            return self.auto.next_run(config, rows), ""
        self.decided.add(key)
        cells = self.auto.decision(config, rows, outcome)
        write_decision(self.path, cells)
        return None, decision_line(config.label(), cells)

    def resumed(self, configs: list[RunConfig], todo: list[RunConfig],
                done: list[dict[str, Any]]) -> tuple[list[RunConfig], list[str]]:
        """The next processes of planned configs already run (a resumed sweep), and the decisions that made."""
        waiting = {c.key() for c in todo}
        more, lines = [], []
        for config in configs:
            if config.key() in waiting or not rows_of(config, done):
                continue
            following, line = self.after(config, done)
            more += [following] if following else []
            lines += [line] if line else []
        return more, lines


def write_decision(path: Path, cells: dict[str, Any]) -> None:
    if path.exists() and path.stat().st_size:
        header, _ = parse_records(path)
        if header != REPEATS_COLUMNS:
            raise SweepError(f"{path}: written with other columns than this dnnbench's repeats.csv: --out a new "
                             "folder")
    append_row(path, cells, REPEATS_COLUMNS)
