"""`--repeats auto`'s stopping rule (step: one config's finished rows -> its next process, or why it needs none, and
the decision's repeats.csv cells). Plain data and arithmetic, no I/O: planning checks its settings, the sweep
(bench/launch/repeats.py) applies it.

A config runs one process, then one more at a time (the sweep interleaves configs, so the processes of one config
are spread over the sweep's time) until the 95 % interval of its median `train_samples_per_s` over the processes is
within ±target of the median (bench/core/stats.py: the order-statistic interval, distribution-free; it needs 6
processes to reach 95 % at all), or a cap stops it: `--max-repeats` processes, or `--max-repeat-seconds` of its
processes' wall time together (another process that would pass it, at their mean so far, is not started). A process
without a throughput (an error, a timeout) stops the config's repeats.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.core import config as cfg
from bench.core import stats
from bench.core.columns import Status
from bench.core.config import RunConfig
from bench.core.numbers import human
from bench.core.repeats_columns import METRIC, REPEATS_SCHEMA_VERSION, Outcome

DEFAULT_TARGET_PCT = {"cuda": 2.0, "cpu": 5.0}  # --precision-target's default by device: GPUs time steadier
DEFAULT_MAX_REPEATS = 20  # pyperf's default process count
DEFAULT_MAX_SECONDS = 1800.0


def throughput(row: dict[str, Any]) -> float | None:
    """A finished row's throughput, or None where it has none (a failed or unmeasured run)."""
    cell = row.get(METRIC)
    if row.get("status") != Status.OK or cell in (None, ""):
        return None
    value = float(cell)
    return value if math.isfinite(value) and value > 0 else None


@dataclass(frozen=True)
class AutoRepeats:
    """The stopping rule's settings for one sweep (`--precision-target`, `--max-repeats`, `--max-repeat-seconds`)."""

    target_pct: float | None = None  # None: by the config's device (DEFAULT_TARGET_PCT)
    max_repeats: int = DEFAULT_MAX_REPEATS
    max_seconds: float = DEFAULT_MAX_SECONDS

    def target(self, config: RunConfig) -> float:
        return self.target_pct if self.target_pct is not None else DEFAULT_TARGET_PCT.get(config.device, 5.0)

    def outcome(self, config: RunConfig, rows: list[dict[str, Any]]) -> Outcome | None:
        """Why the config needs no further process, or None when it needs one: `rows` are its finished rows."""
        values = [v for v in map(throughput, rows) if v is not None]
        if not rows or throughput(rows[-1]) is None:
            return Outcome.FAILED
        if stats.precise_enough(values, self.target(config) / 100):
            return Outcome.MET
        if len(rows) >= self.max_repeats:
            return Outcome.MAX_REPEATS
        seconds = [float(r.get("wall_s") or 0) for r in rows]
        if sum(seconds) + statistics.fmean(seconds) > self.max_seconds:
            return Outcome.MAX_SECONDS
        return None

    def next_run(self, config: RunConfig, rows: list[dict[str, Any]]) -> RunConfig:
        """The config's next process: the repeat after its last, with that repeat's seed (`--seed` + repeat)."""
        repeat = 1 + max(int(r.get("repeat") or 0) for r in rows)
        return config.but(repeat=repeat, seed=config.seed - config.repeat + repeat)

    def decision(self, config: RunConfig, rows: list[dict[str, Any]], outcome: Outcome) -> dict[str, Any]:
        """The config's repeats.csv row."""
        values = [v for v in map(throughput, rows) if v is not None]
        cells: dict[str, Any] = {column: config.columns()[column] for column in cfg.IDENTITY}
        cells |= {"outcome": outcome.value, "processes": len(values), "runs": len(rows),
                  "target_pct": self.target(config), "seconds": sum(float(r.get("wall_s") or 0) for r in rows),
                  "schema_version": REPEATS_SCHEMA_VERSION}
        if values:
            interval = stats.median_interval(values)
            cells |= {"median_samples_per_s": interval.median, "ci_low": interval.low, "ci_high": interval.high,
                      "ci_coverage": interval.coverage, "precision_pct": 100 * interval.half_width,
                      "instability": "; ".join(stats.instability(values))}
        return cells


def rows_of(config: RunConfig, done: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finished rows of `config`'s identity, in repeat order."""
    key = cfg.identity(config.columns())
    return sorted((r for r in done if cfg.identity(r) == key), key=lambda r: int(r.get("repeat") or 0))


def decision_line(label: str, cells: dict[str, Any]) -> str:
    """The console's line for a config's decision."""
    head = f"  {label}: {cells['processes']} process(es)"
    if cells.get("median_samples_per_s") in (None, ""):
        return f"{head}, no throughput: repeats stopped ({cells['outcome']})"
    interval = (f"median {human(cells['median_samples_per_s'])} samples/s, interval [{human(cells['ci_low'])}, "
                f"{human(cells['ci_high'])}] (±{cells['precision_pct']:.1f} %, {cells['ci_coverage']:.0%} coverage)")
    reason = {Outcome.MET.value: f"within ±{cells['target_pct']:g} %",
              Outcome.MAX_REPEATS.value: f"stopped at --max-repeats before ±{cells['target_pct']:g} % at 95 %",
              Outcome.MAX_SECONDS.value: f"stopped at --max-repeat-seconds before ±{cells['target_pct']:g} % at 95 %",
              Outcome.FAILED.value: "the last process failed: repeats stopped"}[cells["outcome"]]
    return f"{head}, {interval}: {reason}"

