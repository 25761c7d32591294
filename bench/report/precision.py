"""The report's "Precision over processes" section (step: a config's rows over its processes, and `--repeats auto`'s
decisions in repeats.csv -> the interval of its median train throughput and pyperf's instability signs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.core import stats
from bench.core.numbers import human
from bench.core.repeats_columns import METRIC, OUTCOME_MEANINGS, REPEATS_COLUMNS, REPEATS_FILE, Outcome
from bench.report.tables import OK
from bench.results.repeats import load_repeats

TITLE = "Precision over processes"
NOTE = ("each config with 2 or more processes (--repeats N, or --repeats auto): the 95 % interval of the median train "
        "throughput over its processes, distribution-free from order statistics (Conover §3.2: [x_(j), x_(n+1-j)], "
        "j from the binomial(n, 1/2); below 6 processes no such pair reaches 95 %, so the whole range is shown with "
        "the coverage it has), its half-width in % of the median, and pyperf's signs that the value may be unstable "
        "(std >= 10 % of the mean; min or max >= 50 % from the mean; fewer processes than ⌈4·1.96²·CV²/0.01²⌉, "
        "what ±1 % at 95 % needs). `--repeats auto` columns: the target asked and why it stopped (" +
        "; ".join(f"{o.value}: {m}" for o, m in OUTCOME_MEANINGS.items() if o is not Outcome.FAILED) + ")")


def decisions(csv_paths: list[Path]) -> pd.DataFrame:
    """`--repeats auto`'s decisions beside the results files, the last per config."""
    frames = [load_repeats(Path(path).parent / REPEATS_FILE) for path in csv_paths]  # beside each results.csv
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=[*REPEATS_COLUMNS, "config_id"])
    return pd.concat(frames, ignore_index=True).drop_duplicates(subset="config_id", keep="last")


def precision_table(frame: pd.DataFrame, decided: pd.DataFrame) -> pd.DataFrame:
    rows = []
    by_config = {row["config_id"]: row for row in decided.to_dict("records")}
    measured = frame[frame["status"].eq(OK) & frame[METRIC].notna()]
    for (model, label), group in measured.groupby(["model", "config_label"], sort=False):
        values = [float(v) for v in group[METRIC]]
        if len(values) < 2:
            continue
        interval = stats.median_interval(values)
        decision = by_config.get(group["config_id"].iloc[0])
        rows.append({
            "model": model, "config": label, "processes": len(values),
            "median (samples/s)": human(interval.median),
            "interval (samples/s)": f"{human(interval.low)} - {human(interval.high)}",
            "coverage": f"{interval.coverage:.0%}", "±": f"{100 * interval.half_width:.1f} %",
            "target": f"±{decision['target_pct']:g} %" if decision else "",
            "stopped": decision["outcome"] if decision else "",
            "instability (pyperf)": "; ".join(stats.instability(values)) or "none",
        })
    return pd.DataFrame(rows).sort_values("model", kind="stable") if rows else pd.DataFrame()


def sections(frame: pd.DataFrame, csv_paths: list[Path]) -> list[tuple[str, str, pd.DataFrame | None]]:
    """The section where a config has 2 or more processes; none otherwise."""
    table = precision_table(frame, decisions(csv_paths))
    return [(TITLE, NOTE, table)] if not table.empty else []
