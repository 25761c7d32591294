"""The repeats.csv columns: one table from which its header and its part of results/README.md come (step: the shape
of `--repeats auto`'s decisions beside results.csv, one row per config it repeated).

Plain data, like bench/core/columns.py, whose `Column` it uses: no torch, so `report` reads it for free.
"""

from __future__ import annotations

from enum import Enum

from bench.core.axes import AXES
from bench.core.columns import Column

REPEATS_SCHEMA_VERSION = 1
READABLE_REPEATS_VERSIONS = (1,)
REPEATS_FILE = "repeats.csv"
METRIC = "train_samples_per_s"  # the throughput whose median's interval the processes are sized to


class Outcome(str, Enum):
    """Why `--repeats auto` ran no further process of a config."""

    MET = "met"
    MAX_REPEATS = "max-repeats"
    MAX_SECONDS = "max-seconds"
    FAILED = "failed"

    __str__ = str.__str__


OUTCOME_MEANINGS = {
    Outcome.MET: "the interval reached 95 % coverage within ±`target_pct`",
    Outcome.MAX_REPEATS: "stopped at `--max-repeats` processes, with the interval it reached",
    Outcome.MAX_SECONDS: "stopped because another process would pass `--max-repeat-seconds` (the config's processes' "
                         "wall seconds together), with the interval it reached",
    Outcome.FAILED: "a process ended without a throughput (its status in results.csv): no further one was run",
}


def _c(name, description, numeric=False, unit="") -> Column:
    return Column(name, "repeats", description, numeric, None, unit)


REPEATS_TABLE: tuple[Column, ...] = (
    # config: the identity columns, as in results.csv (the repeat axis is what this row summarises)
    *(Column(axis.csv, "config", axis.description) for axis in AXES if axis.csv and axis.identity),
    _c("outcome", "why no further process ran: " + "; ".join(f"`{o}` ({m})" for o, m in OUTCOME_MEANINGS.items())),
    _c("processes", "processes of the config with a throughput: the values the interval is over", True),
    _c("runs", "processes of the config run, whatever their status", True),
    _c("target_pct", "the precision asked: `--precision-target` (default 2 on GPUs, 5 on CPUs)", True, "%"),
    _c("median_samples_per_s", f"median over the processes of `{METRIC}`", True, "samples/s"),
    _c("ci_low", "low end of the median's interval: an order statistic (distribution-free, Conover §3.2)", True,
       "samples/s"),
    _c("ci_high", "high end of the median's interval", True, "samples/s"),
    _c("ci_coverage", "the probability that the interval holds the true median: at least 0.95 from 6 processes; "
       "below 6 no order-statistic pair reaches 95 % and the interval is the whole range (3 processes: 0.75)", True),
    _c("precision_pct", "the interval's farther end from the median, in % of it: ±this was reached", True, "%"),
    _c("seconds", "wall seconds of the config's processes together (results.csv's `wall_s`)", True, "s"),
    _c("instability", "pyperf's signs that the value may be unstable, over the processes (std >= 10 % of the mean; "
       "min or max >= 50 % from the mean; fewer processes than ⌈4·1.96²·CV²/0.01²⌉), separated by `; `"),
    _c("schema_version", f"version of repeats.csv's columns ({REPEATS_SCHEMA_VERSION})"),
)

REPEATS_COLUMNS = [column.name for column in REPEATS_TABLE]
REPEATS_NUMERIC = [column.name for column in REPEATS_TABLE if column.numeric]


def markdown_docs() -> str:
    """The repeats.csv column reference of results/README.md (a test checks the README matches)."""
    lines = ["| column | unit | meaning |", "|---|---|---|",
             "| config columns |  | the config's identity, as in results.csv (`model` ... without `seed`, `repeat`) |"]
    lines += [f"| `{column.name}` | {column.unit} | {column.description} |"
              for column in REPEATS_TABLE if column.group != "config"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m bench.core.repeats_columns > the repeats.csv section of results/README.md
    print(markdown_docs(), end="")
