"""`dnnbench compare BASE.csv NEW.csv [--threshold PCT]`: per-metric changes; exit 1 on a regression.

Exit codes: 0 nothing regressed beyond the threshold, 1 something did, 2 unusable input.
With repeats on both sides, a change is called a regression only if Mann-Whitney U says the two samples
differ (p < 0.05); otherwise it is marked noise. (Two-sided test: with fewer than 4 repeats per side no
difference can reach p < 0.05, so such changes are always noise.)
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from bench.results_io import CONFIG_KEY, ResultsError, load_results

# (column, direction): "max" = higher is better. metric_value's direction comes from the row.
METRICS = [
    ("metric_value", None),
    ("train_samples_per_s", "max"),
    ("infer_samples_per_s", "max"),
    ("latency_p50_ms", "min"),
    ("latency_p95_ms", "min"),
    ("peak_gpu_mem_allocated_mb", "min"),
    ("peak_rss_mb", "min"),
    ("time_to_target_s", "min"),
]
P_NOISE = 0.05


def judge(base: list[float], new: list[float], direction: str, threshold: float) -> tuple[float, str, bool]:
    """(change in percent, verdict, whether a significance test must still confirm it) for one metric of one config."""
    base_centre, new_centre = statistics.median(base), statistics.median(new)
    if base_centre == 0:
        change = 0.0 if new_centre == 0 else float("inf")
    else:
        change = (new_centre - base_centre) / abs(base_centre) * 100
    worse = change < -threshold if direction == "max" else change > threshold
    better = change > threshold if direction == "max" else change < -threshold
    if not (worse or better):
        return change, "same", False
    return change, "REGRESSION" if worse else "improved", len(base) > 1 and len(new) > 1


def mark_noise(rows: list[dict], pending: list[tuple[int, list[float], list[float]]]) -> None:
    """Re-mark as noise each pending (row index, base, new) change whose Mann-Whitney U p-value is >= P_NOISE.

    Tests of equal sample sizes go to scipy as one vectorised call: one call per test costs ~2 ms of overhead,
    which on a 1,000-row file was most of compare's time.
    """
    by_shape: dict[tuple[int, int], list[tuple[int, list[float], list[float]]]] = {}
    for test in pending:
        by_shape.setdefault((len(test[1]), len(test[2])), []).append(test)
    for tests in by_shape.values():
        base, new = np.array([t[1] for t in tests]), np.array([t[2] for t in tests])
        pvalues = np.atleast_1d(mannwhitneyu(base, new, alternative="two-sided", axis=1).pvalue)
        for (index, _, _), pvalue in zip(tests, pvalues):
            if pvalue >= P_NOISE:
                rows[index]["verdict"] = "noise"


def compare(base: pd.DataFrame, new: pd.DataFrame, threshold: float) -> tuple[pd.DataFrame, list, list]:
    base_groups = dict(list(base.groupby(CONFIG_KEY)))
    new_groups = dict(list(new.groupby(CONFIG_KEY)))
    common = [k for k in base_groups if k in new_groups]
    rows, pending = [], []
    for key in common:
        old_rows, new_rows = base_groups[key], new_groups[key]
        label = " ".join(str(k) for k in (key[0], key[2] + (f":{key[3]}" if key[3] != "1" else ""), key[5],
                                          "compiled" if key[6] == "on" else "", f"bs{key[7]}", key[8]) if k)
        old_ok, new_ok = old_rows[old_rows["status"] == "ok"], new_rows[new_rows["status"] == "ok"]
        if not old_ok.empty and new_ok.empty:
            rows.append({"config": label, "metric": "status", "base": "ok",
                         "new": "/".join(sorted(set(new_rows["status"]))), "change %": "", "verdict": "REGRESSION"})
            continue
        for column, direction in METRICS:
            if column not in old_ok or column not in new_ok:
                continue
            before, after = old_ok[column].dropna().tolist(), new_ok[column].dropna().tolist()
            if not before or not after:
                continue
            if column == "metric_value":
                direction = new_ok["metric_direction"].iloc[0] or "max"
                name = f"quality ({new_ok['metric_name'].iloc[0]})"
            else:
                name = column
            change, verdict, needs_test = judge(before, after, direction, threshold)
            if needs_test:
                pending.append((len(rows), before, after))
            rows.append({"config": label, "metric": name, "base": f"{statistics.median(before):.4g}",
                         "new": f"{statistics.median(after):.4g}", "change %": f"{change:+.1f}",
                         "verdict": verdict})
    mark_noise(rows, pending)
    only_base = [k for k in base_groups if k not in new_groups]
    only_new = [k for k in new_groups if k not in base_groups]
    return pd.DataFrame(rows), only_base, only_new


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dnnbench compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base")
    parser.add_argument("new")
    parser.add_argument("--threshold", type=float, default=5.0, help="percent change that counts (default 5)")
    args = parser.parse_args(argv)
    try:
        base, new = load_results(args.base), load_results(args.new)
        table, only_base, only_new = compare(base, new, args.threshold)
        if table.empty:
            raise ResultsError(f"no configs in common between {args.base} and {args.new}")
    except ResultsError as exc:
        print(f"dnnbench compare: error: {exc}", file=sys.stderr)
        return 2
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
        print(table.to_string(index=False))
    for title, keys in (("only in base", only_base), ("only in new", only_new)):
        for key in keys:
            print(f"{title}: " + " ".join(f"{c}={v}" for c, v in zip(CONFIG_KEY, key)))
    regressions = table[table["verdict"] == "REGRESSION"]
    print(f"\n{len(regressions)} regression(s) beyond {args.threshold:g}% "
          f"({(table['verdict'] == 'noise').sum()} change(s) marked noise)")
    return 1 if len(regressions) else 0
