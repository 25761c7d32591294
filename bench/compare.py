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


def judge(base: list[float], new: list[float], direction: str, threshold: float) -> tuple[float, str]:
    """(change in percent, verdict) for one metric of one config; "test" = significance still to be checked."""
    base_centre, new_centre = statistics.median(base), statistics.median(new)
    if base_centre == 0:
        change = 0.0 if new_centre == 0 else float("inf")
    else:
        change = (new_centre - base_centre) / abs(base_centre) * 100
    worse = change < -threshold if direction == "max" else change > threshold
    better = change > threshold if direction == "max" else change < -threshold
    if not (worse or better):
        return change, "same"
    if len(base) > 1 and len(new) > 1:
        return change, "test"
    return change, "REGRESSION" if worse else "improved"


def settle_significance(rows: list[dict], samples: list[tuple[list[float], list[float]]]) -> None:
    """Decide the "test" verdicts: noise unless Mann-Whitney U gives p < P_NOISE.

    Tests of equal sample sizes go to scipy as one vectorised call: one call per test costs ~2 ms of overhead,
    which on a 1,000-row file was most of compare's time.
    """
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, row in enumerate(rows):
        if row["verdict"] == "test":
            by_shape.setdefault((len(samples[i][0]), len(samples[i][1])), []).append(i)
    for indices in by_shape.values():
        base = np.array([samples[i][0] for i in indices])
        new = np.array([samples[i][1] for i in indices])
        pvalues = np.atleast_1d(mannwhitneyu(base, new, alternative="two-sided", axis=1).pvalue)
        for i, pvalue in zip(indices, pvalues):
            change = rows[i]["_change"]
            worse = change < 0 if rows[i]["direction"] == "max" else change > 0
            rows[i]["verdict"] = "noise" if pvalue >= P_NOISE else ("REGRESSION" if worse else "improved")


def compare(base: pd.DataFrame, new: pd.DataFrame, threshold: float) -> tuple[pd.DataFrame, list, list]:
    base_groups = dict(list(base.groupby(CONFIG_KEY)))
    new_groups = dict(list(new.groupby(CONFIG_KEY)))
    common = [k for k in base_groups if k in new_groups]
    rows, samples = [], []
    for key in common:
        old_rows, new_rows = base_groups[key], new_groups[key]
        label = " ".join(str(k) for k in (key[0], key[2] + (f":{key[3]}" if key[3] != "1" else ""), key[5],
                                          "compiled" if key[6] == "on" else "", f"bs{key[7]}", key[8]) if k)
        old_ok, new_ok = old_rows[old_rows["status"] == "ok"], new_rows[new_rows["status"] == "ok"]
        if not old_ok.empty and new_ok.empty:
            rows.append({"config": label, "metric": "status", "base": "ok",
                         "new": "/".join(sorted(set(new_rows["status"]))), "change %": "", "verdict": "REGRESSION",
                         "direction": "", "_change": 0.0})
            samples.append(([], []))
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
            change, verdict = judge(before, after, direction, threshold)
            rows.append({"config": label, "metric": name, "base": f"{statistics.median(before):.4g}",
                         "new": f"{statistics.median(after):.4g}", "change %": f"{change:+.1f}",
                         "verdict": verdict, "direction": direction, "_change": change})
            samples.append((before, after))
    settle_significance(rows, samples)
    for row in rows:
        del row["direction"], row["_change"]
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
