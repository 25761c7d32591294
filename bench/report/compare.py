"""`dnnbench compare BASE NEW [--threshold PCT] [--metrics NAME,...|all]`: per-metric changes of each config; exit 1
on a regression. BASE and NEW are results CSVs or sweep folders (every results.csv in or below one, as `report`).

Exit codes: 0 nothing regressed beyond the threshold, 1 something did, 2 unusable input.
By default the headline metrics are judged: quality (and each secondary test metric of other_metrics that declares
its direction), whether the target was reached, time to target, train and inference throughput, latency p50 and
peak memory. `--metrics` names others (any column with a better direction, or
a secondary test metric of other_metrics), `--metrics all` judges every one. The rule, per metric of each config:
  1. the change is the new median against the base median; within --threshold percent it is `same`;
  2. beyond it, with at least 4 repeats on each side, two-sided Mann-Whitney U decides: p >= 0.05 marks it
     `noise`, otherwise it stands (a REGRESSION, or `improved`);
  3. with fewer repeats on a side (1-3: no difference can reach p < 0.05 there, so the test has no power to
     decide), it stands only if the two sides' ranges (min..max) do not overlap; overlapping ranges are `noise`.
     One run per side is judged by the threshold alone, except a timing metric (throughput, latency, time to
     target): one process against one cannot show a change under 20 % (separate processes of one config differ
     that much on a busy machine: bench/core/stats.py SINGLE_RUN_NOISE), so a smaller one is `noise`, and so is
     any change where a side's run shared its machine (noise_warning: its timing says more about the load).
A base with >= 5 runs of a benchmark is also a reference for MLPerf's convergence gate (bench/report/convergence.py):
the new side's epochs and steps to the target, per config, against the reference's (INVALID and REGRESSION fail).
With 2 or more repeats a side, `P(new better)` gives the probability that a new run beats a base run (for a
throughput: is faster), from the repeats: the share of (base, new) pairs it wins, ties half (the common-language
effect size, Mann-Whitney's U / (n m)).
A config with no ok run on one side is judged by its status: failing now is a regression. A config with a quality
target is also judged by how many of its runs reached it (MLPerf counts a run that does not converge): a smaller
share now (`reached target`, e.g. 4 of 5 against 5 of 5) is a regression; its time-to-target is a column like the
others (the runs that reached the target; the report gives their olympic mean). Rows that ran beside
other load (a non-empty noise_warning) are flagged in the `noisy` column and in a warning.
Where both sides have an inference.csv beside their results, each (config, backend, batch size) of it is judged the
same way (throughput, latency p50, the test metric through the backend; a backend that was ok and now fails is a
regression); a point timed beside other load (its own noise_warning, inference.csv version 2) has its speed and
latency changes marked `noise`.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys

import pandas as pd

from bench.core import config as cfg
from bench.core import stats
from bench.core.columns import BY_NAME, GATED, Column, Status
from bench.core.inference_columns import INFERENCE_BY_NAME, INFERENCE_GATED, KEY
from bench.core.numbers import human
from bench.report import convergence
from bench.results.files import results_files
from bench.results.io import ResultsError, inference_beside, load_inference, load_results
from bench.results.provenance import differences

NAME, HELP = "compare", "compare two results CSVs or sweep folders; exit 1 on regressions"
TIMED_UNITS = ("samples/s", "ms", "s")  # timing metrics: a single run of each is as noisy as the machine
# What compare judges by default: what a reader of the report's first screen decides on (quality, time to target,
# throughputs, latency, memory); a diagnostic such as data_wait_fraction explains one of these, so it gates only when
# asked for (`--metrics NAME`).
HEADLINE = ["metric_value", "time_to_target_s", "train_samples_per_s", "infer_samples_per_s", "latency_p50_ms",
            "peak_gpu_mem_allocated_mb", "peak_rss_mb"]
TESTED_REPEATS = 4  # per side: from here a two-sided Mann-Whitney U can reach p < 0.05 (3 vs 3: p >= 0.1)


def ranges_overlap(base: list[float], new: list[float]) -> bool:
    return max(min(base), min(new)) <= min(max(base), max(new))


def judge(base: list[float], new: list[float], direction: str, threshold: float, timing: bool = False,
          shared: bool = False) -> tuple[float, str, bool]:
    """(change in percent, verdict, whether a significance test must still confirm it) for one metric of one config:
    the module docstring's rule, short of the test itself; `timing`: a throughput, latency or time; `shared`: a side
    ran beside other load (noise_warning)."""
    base_centre, new_centre = statistics.median(base), statistics.median(new)
    if base_centre == 0:
        change = 0.0 if new_centre == 0 else float("inf")
    else:
        change = (new_centre - base_centre) / abs(base_centre) * 100
    worse = change < -threshold if direction == "max" else change > threshold
    better = change > threshold if direction == "max" else change < -threshold
    if not (worse or better):
        return change, "same", False
    verdict = "REGRESSION" if worse else "improved"
    if min(len(base), len(new)) >= TESTED_REPEATS:
        return change, verdict, True
    if timing and len(base) == len(new) == 1 and (shared or abs(change) < stats.SINGLE_RUN_NOISE * 100):
        return change, "noise", False
    return change, "noise" if ranges_overlap(base, new) else verdict, False


def probability_better(base: list[float], new: list[float], direction: str) -> str:
    """The share of (base, new) repeat pairs in which the new run is better, ties counting half: the common-language
    effect size (McGraw & Wong 1992), Mann-Whitney's U / (n m); for a throughput, the probability that a new run is
    faster than a base run. Empty below 2 repeats a side."""
    if min(len(base), len(new)) < 2:
        return ""
    sign = 1 if direction == "max" else -1
    wins = sum(1.0 if sign * (after - before) > 0 else 0.5 if after == before else 0.0
               for before in base for after in new)
    return f"{wins / (len(base) * len(new)):.2f}"


def mark_noise(rows: list[dict], pending: list[tuple[int, list[float], list[float]]]) -> None:
    """Re-mark as noise each pending (row index, base, new) change that Mann-Whitney U does not confirm."""
    by_shape: dict[tuple[int, int], list[tuple[int, list[float], list[float]]]] = {}
    for test in pending:
        by_shape.setdefault((len(test[1]), len(test[2])), []).append(test)
    for tests in by_shape.values():
        same = stats.not_different([t[1] for t in tests], [t[2] for t in tests])
        for (index, _, _), noise in zip(tests, same):
            if noise:
                rows[index]["verdict"] = "noise"


def metric_samples(old_ok: pd.DataFrame, new_ok: pd.DataFrame, gated: list[str] = GATED,
                   by_name: dict[str, Column] = BY_NAME, secondary_names: set[str] | None = None):
    """(name, direction, base values, new values, whether it is a timing metric) for every gated column and directed
    secondary metric (those in `secondary_names`; None: all of them)."""
    for column in gated:
        if column not in old_ok or column not in new_ok:
            continue
        direction, name = by_name[column].better, column
        if direction == "row":
            direction = new_ok["metric_direction"].iloc[0] or "max"
            name = f"quality ({new_ok['metric_name'].iloc[0]})"
        yield (name, direction, old_ok[column].dropna().tolist(), new_ok[column].dropna().tolist(),
               by_name[column].unit in TIMED_UNITS)
    secondary: dict[str, tuple[str, list, list]] = {}
    for side, frame in ((1, old_ok), (2, new_ok)):
        for metrics in frame["other_metrics"] if "other_metrics" in frame else []:
            for metric, entry in metrics.items():
                if entry.get("better") in ("max", "min"):
                    secondary.setdefault(metric, (entry["better"], [], []))[side].append(  # type: ignore[union-attr]
                        float(entry["value"]))
    for metric, (direction, before, after) in sorted(secondary.items()):
        if secondary_names is None or metric in secondary_names:
            yield f"other ({metric})", direction, before, after, False


def status_change(label: str, old_rows: pd.DataFrame, new_rows: pd.DataFrame) -> dict:
    """A config without ok runs on one side: now failing is a regression, now passing an improvement."""
    before, after = ("/".join(sorted(set(rows["status"]))) for rows in (old_rows, new_rows))
    old_ok, new_ok = (rows["status"].eq(Status.OK).any() for rows in (old_rows, new_rows))
    verdict = "REGRESSION" if old_ok and not new_ok else "improved" if new_ok and not old_ok else "same"
    return {"config": label, "metric": "status", "base": before, "new": after, "change %": "", "verdict": verdict}


def reached_change(label: str, old_rows: pd.DataFrame, new_rows: pd.DataFrame) -> dict | None:
    """The runs that reached the target, base against new (k of N, failed runs counting as not reaching it); None
    for a config without a target."""
    if any("metric_target" not in rows or rows["metric_target"].isna().all() for rows in (old_rows, new_rows)):
        return None  # no target (an inference point has none: its quality is the drift)
    (old_k, old_n), (new_k, new_n) = ((int((rows["status"].eq(Status.OK) & rows["reached_target"].eq("yes")).sum()),
                                       len(rows)) for rows in (old_rows, new_rows))
    share = new_k * old_n - old_k * new_n  # compares new_k / new_n with old_k / old_n without dividing
    verdict = "REGRESSION" if share < 0 else "improved" if share > 0 else "same"
    return {"config": label, "metric": "reached target", "base": f"{old_k} of {old_n}", "new": f"{new_k} of {new_n}",
            "change %": "", "verdict": verdict}


def noisy_count(frame: pd.DataFrame) -> int:
    """Rows that ran beside other load (schema 1-3 files may lack the column: then none)."""
    if "noise_warning" not in frame:
        return 0
    return int(frame["noise_warning"].fillna("").astype(str).str.len().gt(0).sum())


def spelled_out(identity: tuple[str, ...]) -> str:
    names = (*cfg.IDENTITY, *KEY)  # an inference point's key is the config's, then its backend and batch size
    return " ".join(f"{axis}={value}" for axis, value in zip(names, identity))


def point_label(row: dict) -> str:
    """A config's label; an inference row's adds its backend and batch size."""
    text = cfg.label(row, leave_out=())
    return f"{text} | {row['backend']} infer-bs{int(row['infer_batch_size'])}" if "backend" in row else text


def inference_comparison(base_csvs: list, new_csvs: list, threshold: float) -> tuple[pd.DataFrame, list, list]:
    """The inference.csv rows beside each side's results, gated like the results rows (none: an empty table)."""
    base, new = (concat([load_inference(inference_beside(path)) for path in paths]) for paths in (base_csvs, new_csvs))
    if base.empty or new.empty:
        return pd.DataFrame(), [], []
    return compare(base, new, threshold, "point_id", INFERENCE_GATED, INFERENCE_BY_NAME, noisy_speed_is_noise=True)


NOISE_BOUND = ("speed", "latency")  # the column groups whose numbers other load moves (quality it does not)


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One side's frames (a folder of sweeps: one per results file) as one; the empty ones add nothing."""
    full = [frame for frame in frames if not frame.empty]
    return pd.concat(full, ignore_index=True) if len(full) > 1 else full[0] if full else frames[0]


def compare(base: pd.DataFrame, new: pd.DataFrame, threshold: float, key: str = "config_id",
            gated: list[str] = GATED, by_name: dict[str, Column] = BY_NAME, secondary_names: set[str] | None = None,
            noisy_speed_is_noise: bool = False) -> tuple[pd.DataFrame, list, list]:
    """Each config's (`key`'s) metrics judged; results frames by default, inference frames with their own key
    (`point_id`: the config, backend and batch size) and columns. `noisy_speed_is_noise` (inference points, each
    with its own noise reading): a speed or latency change of a point timed beside other load, on either side, is
    `noise`, not a regression or an improvement."""
    base_groups = dict(list(base.groupby(key, sort=False)))
    new_groups = dict(list(new.groupby(key, sort=False)))
    rows, pending = [], []
    for group in (k for k in base_groups if k in new_groups):
        old_rows, new_rows = base_groups[group], new_groups[group]
        label = point_label(old_rows.iloc[0].to_dict())
        noisy = "/".join(side for side, frame in (("base", old_rows), ("new", new_rows)) if noisy_count(frame))
        old_ok, new_ok = old_rows[old_rows["status"] == Status.OK], new_rows[new_rows["status"] == Status.OK]
        if old_ok.empty or new_ok.empty:  # no metric to judge on one side: judge the status
            rows.append(status_change(label, old_rows, new_rows) | {"noisy": noisy})
            continue
        if (reached := reached_change(label, old_rows, new_rows)) is not None:
            rows.append(reached | {"noisy": noisy})
        for name, direction, before, after, timing in metric_samples(old_ok, new_ok, gated, by_name,
                                                                     secondary_names):
            if not before or not after:
                continue
            change, verdict, needs_test = judge(before, after, direction, threshold, timing, bool(noisy))
            if noisy and noisy_speed_is_noise and name in by_name and by_name[name].group in NOISE_BOUND:
                verdict, needs_test = ("noise" if verdict != "same" else verdict), False
            if needs_test:
                pending.append((len(rows), before, after))
            rows.append({"config": label, "metric": name, "base": human(statistics.median(before)),
                         "new": human(statistics.median(after)), "change %": human(change, signed=True),
                         "P(new better)": probability_better(before, after, direction), "verdict": verdict,
                         "noisy": noisy})
    mark_noise(rows, pending)
    only_base = [spelled_out(k) for k in base_groups if k not in new_groups]
    only_new = [spelled_out(k) for k in new_groups if k not in base_groups]
    return pd.DataFrame(rows), only_base, only_new


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", help="results CSV of the baseline, or a sweep folder (every results.csv in or "
                        "below it)")
    parser.add_argument("new", help="results CSV or sweep folder to judge against it")
    parser.add_argument("--threshold", type=float, default=5.0, help="percent change that counts (default 5)")
    parser.add_argument("--metrics", default="headline", metavar="NAME[,NAME]|all",
                        help="metrics to gate besides status and reached target: headline (quality and the secondary "
                        "test metrics, time to target, train/infer samples/s, latency p50, peak memory), all (every "
                        "column with a better direction), or a comma list of column or secondary metric names")


def secondary_metrics(frame: pd.DataFrame) -> set[str]:
    """The directed secondary metrics (other_metrics) of a side's rows."""
    return {metric for metrics in frame.get("other_metrics", []) if isinstance(metrics, dict)
            for metric, entry in metrics.items() if entry.get("better") in ("max", "min")}


def chosen_metrics(text: str, base: pd.DataFrame, new: pd.DataFrame) -> tuple[list[str], set[str] | None]:
    """--metrics as (results columns to gate, secondary metric names to gate; None: every one)."""
    if text == "headline":
        return HEADLINE, None  # secondary test metrics are quality too (PSNR beside MSE, IS beside FID)
    if text == "all":
        return GATED, None
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = secondary_metrics(base) | secondary_metrics(new)
    unknown = [name for name in names if name not in GATED and name not in known]
    if unknown or not names:
        raise ResultsError(f"--metrics: unknown metric {unknown[0] if unknown else repr(text)}; use headline, all, or "
                           f"names from: {', '.join(GATED + sorted(known))}")
    return [name for name in GATED if name in names], {name for name in names if name in known}


def main(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.threshold) and args.threshold >= 0):
        raise ResultsError(f"--threshold must be a finite percentage >= 0; got {args.threshold:g}")
    base_csvs, new_csvs = results_files([args.base]), results_files([args.new])
    base, new = (concat([load_results(path) for path in paths]) for paths in (base_csvs, new_csvs))
    for difference in differences(base, new):  # numbers from different machines or software are not like for like
        print(f"dnnbench compare: warning: {difference}", file=sys.stderr)
    gated_columns, secondary_names = chosen_metrics(getattr(args, "metrics", "headline"), base, new)
    table, only_base, only_new = compare(base, new, args.threshold, gated=gated_columns,
                                         secondary_names=secondary_names)
    points, points_base, points_new = inference_comparison(base_csvs, new_csvs, args.threshold)
    table = pd.concat([table, points], ignore_index=True) if not points.empty else table
    gated = convergence.gate_table(base, new)  # a base with >= 5 runs of a benchmark: MLPerf's convergence gate
    table = pd.concat([table, gated], ignore_index=True) if not gated.empty else table
    only_base, only_new = only_base + points_base, only_new + points_new
    if table.empty:
        raise ResultsError(f"no configs in common between {args.base} and {args.new}")
    for side, frame in (("base", base), ("new", new)):
        if count := noisy_count(frame):
            print(f"dnnbench compare: warning: {count} of {len(frame)} {side} row(s) ran beside other load "
                  "(noise_warning): their speeds may be off; see the `noisy` column", file=sys.stderr)
    table = table.fillna({"P(new better)": ""}) if "P(new better)" in table else table  # status rows have none
    if "noisy" in table:  # gate rows have none: an empty cell
        table["noisy"] = table["noisy"].fillna("")
        table = table if table["noisy"].astype(bool).any() else table.drop(columns="noisy")
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
        print(table.to_string(index=False))
    for title, labels in (("only in base", only_base), ("only in new", only_new)):
        for text in labels:
            print(f"{title}: {text}")
    for label in table.loc[table["verdict"] == convergence.FASTER, "config"].unique():
        print(f"{label}: {convergence.FASTER_NOTE}")
    regressions = table[table["verdict"].isin(convergence.FAILING)]
    print(f"\n{len(regressions)} regression(s) beyond {args.threshold:g}% "
          f"({(table['verdict'] == 'noise').sum()} change(s) marked noise)")
    return 1 if len(regressions) else 0
