"""The sweep's table (step: the sweep's rows -> a table for a terminal at the end of `dnnbench run`): the model, the
config columns that vary across the sweep, the status where a run did not end ok, and the headline numbers, with
two-line headers that give the unit once, within 120 columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.core.axes import AXES
from bench.core.columns import Status
from bench.core.numbers import human
from bench.launch.console import WIDTH, fit, present


# The columns a sweep's table may show: (key, header's two lines, cell of a row); the config columns that vary come
# first. Where the table would be wider than WIDTH, the last of these go first (the report has them all).
def memory_cell(row: Mapping[str, Any]) -> str:
    """Peak GPU memory allocated on a GPU run, else the process's peak RSS."""
    gpu = row.get("peak_gpu_mem_allocated_mb")
    return human(gpu) if present(gpu) else human(row.get("peak_rss_mb"))


def target_cell(row: Mapping[str, Any]) -> str:
    """`✓ 0.931 ≥ 0.93`: the validation value the target was judged on, against the target."""
    if row.get("reached_target") not in ("yes", "no"):
        return ""
    reached = row.get("reached_target") == "yes"
    relation = ("≤" if reached else ">") if row.get("metric_direction") == "min" else ("≥" if reached else "<")
    return f"{'✓' if reached else '✗'} {human(row.get('target_metric_value'))} {relation} " \
           f"{human(row.get('metric_target'))}".replace("  ", " ")


HEADLINE: list[tuple[str, tuple[str, str], Any]] = [
    ("quality", ("test", "quality"),
     lambda r: f"{r.get('metric_name')} {human(r.get('metric_value'))}" if present(r.get("metric_value")) else ""),
    ("target", ("val vs", "target"), target_cell),
    ("time_to_target_s", ("to target", "s"), lambda r: human(r.get("time_to_target_s"))),
    ("train_samples_per_s", ("train", "samples/s"), lambda r: human(r.get("train_samples_per_s"))),
    ("infer_samples_per_s", ("infer", "samples/s"), lambda r: human(r.get("infer_samples_per_s"))),
    ("latency_p50_ms", ("p50 ms", "per batch"), lambda r: human(r.get("latency_p50_ms"))),
    ("memory", ("peak mem", "MiB"), memory_cell),
]  # wall time: in each run's line
RIGHT = {key for key, _, _ in HEADLINE} - {"quality", "target"}  # numbers align right, text left
TABLE_AXES = [axis for axis in AXES if axis.csv and (axis.identity or axis.name == "seed")
              and axis.name not in ("num_devices", "batch_size_mode")]  # both spelled in device / batch size cells


def axis_cell(axis: Any, row: Mapping[str, Any]) -> str:
    if axis.name == "device":
        return axis.label_text(row)  # cpu, cuda:2
    value = str(row.get(axis.csv, "") if row.get(axis.csv) is not None else "")
    if axis.name == "batch_size" and row.get("batch_size_mode") == "auto":
        return f"auto {value}".strip()
    return value


def varies(axis: Any, rows: Sequence[Mapping[str, Any]], within_model: bool) -> bool:
    """Whether an axis takes more than one value in the sweep (`within_model`: within one model's rows; each model's
    own datamodule is the run lines' to say, not a column the reader compares along)."""
    groups: dict[str, set[str]] = {}
    for row in rows:
        groups.setdefault(str(row.get("model")) if within_model else "", set()).add(axis_cell(axis, row))
    return any(len(values) > 1 for values in groups.values())


def table_columns(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, tuple[str, str], Any]]:
    """The sweep table's columns: the model, the config columns that vary across the sweep, the status where a run
    did not end ok, and the headline numbers any run has."""
    columns: list[tuple[str, tuple[str, str], Any]] = [
        (axis.csv, ("", axis.name.replace("_", " ").replace("batch size", "batch")), lambda r, a=axis: axis_cell(a, r))
        for axis in TABLE_AXES if axis.name == "model" or varies(axis, rows, within_model=axis.name != "batch_size")]
    if any(r.get("status") != Status.OK for r in rows):
        columns.append(("status", ("", "status"), lambda r: str(r.get("status", ""))))
    batches = {str(r.get("batch_size")) for r in rows}
    for key, header, cell in HEADLINE:
        if key == "latency_p50_ms" and len(batches) == 1:
            header = ("p50 ms", f"@ bs{batches.pop()}")  # the latency of one batch of this many samples
        if any(cell(r) for r in rows):
            columns.append((key, header, cell))
    return columns


def sweep_table(rows: Sequence[Mapping[str, Any]], width: int = WIDTH) -> str:
    """The sweep's rows for a terminal (`table_columns`): two-line headers with the unit once, at most `width`
    columns wide (the last headline columns left out, and said, where it would be wider)."""
    if not rows:
        return ""
    columns = table_columns(rows)
    cells = [[cell(r) for r in rows] for _, _, cell in columns]
    widths = [max(len(h) for h in (*header, *texts)) for (_, header, _), texts in zip(columns, cells)]
    shown, dropped = len(columns), []
    while shown > 1 and sum(widths[:shown]) + 2 * (shown - 1) > width:
        shown -= 1
        dropped.append(" ".join(columns[shown][1]).strip())
    right = [key in RIGHT for key, _, _ in columns[:shown]]

    def joined(texts: list[str]) -> str:
        return "  ".join(f"{t:>{w}}" if r else f"{t:<{w}}" for t, w, r in zip(texts, widths, right)).rstrip()

    lines = [joined([header[line] for _, header, _ in columns[:shown]]) for line in range(2)]
    lines += [joined([texts[index] for texts in cells[:shown]]) for index in range(len(rows))]
    if dropped:
        lines.append(fit(f"(left out to fit {width} columns: {', '.join(reversed(dropped))}; the report has them)",
                         width))
    return "\n".join(lines)
