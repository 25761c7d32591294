"""`dnnbench history PATH... [--out DIR] [--threshold PCT] [--reference DIR] [--repo DIR] [--fail-on-regression]`:
results over commits (step: rows read back through the one reader -> a series per config, its steps, a static page).

Each results CSV or sweep folder named (every results.csv in or below it, and the inference.csv beside each) is read
through bench/results/io.py. Rows are grouped by config identity (compare's rule; an inference point is its config,
backend and batch size), and rows from different hosts, devices or software versions (compare's MUST_MATCH) are
separate series. A series' points are its commits (`git_commit`, a `-dirty` checkout its own point), ordered by
commit time from `git log` in --repo (default: this dnnbench's checkout), else by the earliest `started_at` of the
commit's rows, then by `started_at`. Every directed column of the column table (throughputs, latency, memory,
time-to-target, quality, energy; inference.csv's own) is a series with each point's spread (its rows' range).

Steps: ruptures' PELT (a maintained change-point library; exact penalised segmentation, so one series of many commits
splits into as many level shifts as it has) fits a piecewise-constant mean to the commits' medians relative to the
series' median, with a penalty that admits any step of the threshold's size. asv's publish does the same job with
its own weighted L1 fit, but that is asv's internal module (asv.step_detect, no stable API) inside a whole benchmark
tool; ruptures is the library for exactly this, with its methods documented. A proposed step stands only beyond the
noise: it must exceed the series' own process-to-process spread (over the commits measured by two or more processes,
the largest (max - min) / median of their values: a level shift smaller than what processes of one build disagreed by
is not one to bisect; the median of those spreads let through a +5.4 % inference step between identical builds whose
first commit's processes spread 14 %), and pass compare's rule on the two segments' rows (bench/report/compare.py:
beyond --threshold, then Mann-Whitney U from 4 rows a side, else ranges that do not overlap). The rows are independent
processes: a config's repeats never fork from one warm server (bench/launch/warm_client.py), whose forks agree with
each other more than separate processes do (0.3 % against 17 % in inference throughput, the tiny model of
tests/report/test_history.py). Each step names its last good and first bad commit, the `git log A..B` range to bisect,
and how many of the rows either side ran beside other load.

With --reference DIR (>= 5 seeds of a benchmark), each commit's seeds also face MLPerf's convergence gate
(bench/report/convergence.py). --fail-on-regression: exit 1 when a step is a regression or a gate fails. With
--wandb offline|online (online by default where WANDB_API_KEY is set) the series go to one W&B run, `history`.
Exit codes: 0 written (and, with --fail-on-regression, nothing regressed), 1 a regression, 2 unusable input.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.core import config as cfg
from bench.core.columns import BY_NAME, GATED, Column, number
from bench.core.errors import ResultsError
from bench.core.inference_columns import INFERENCE_BY_NAME, INFERENCE_GATED
from bench.report import convergence
from bench.report.compare import judge, noisy_count, point_label
from bench.report.history_series import Series
from bench.results.files import results_files
from bench.results.io import inference_beside, load_inference, load_results
from bench.results.provenance import MUST_MATCH

NAME, HELP = "history", "results over commits: series per config, steps found in them, a static page"
# The directed results a user tracks over commits: throughputs, latency, memory, time to train, quality, energy.
# data_wait_fraction is a diagnostic (the share of a step spent waiting for data, a few thousandths on in-memory data,
# where run-to-run noise is tens of percent of it): compare shows it, history does not chase its steps.
SERIES_COLUMNS = [column for column in GATED if column != "data_wait_fraction"]
UNKNOWN_COMMIT = "unknown"
COMMIT_HASH = re.compile(r"[0-9a-fA-F]{4,64}")  # what bench/run/environment.py records (`git rev-parse --short`)


# ----------------------------------------------------------------------------------------------- reading
def read(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every results row and every inference.csv row beside them, each with its source folder."""
    csv_paths = results_files(paths)
    results = pd.concat([load_results(path).assign(source=str(path.parent)) for path in csv_paths],
                        ignore_index=True)
    inference = pd.concat([load_inference(inference_beside(path)).assign(source=str(path.parent))
                           for path in csv_paths], ignore_index=True)
    return results, with_provenance(inference, results)


def with_provenance(inference: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """inference.csv rows carry no commit, start time or machine: their run's results row (the same sweep folder
    and run: config, seed and repeat) does."""
    if inference.empty:
        return inference
    runs = {(row["source"], cfg.run_key(row)): row for row in results.to_dict("records")}
    points = [runs.get((row["source"], cfg.run_key(row)), {}) for row in inference.to_dict("records")]
    return inference.assign(**{column: [point.get(column, "") for point in points]
                               for column in ("git_commit", "started_at", *MUST_MATCH)})


def commit_times(frame: pd.DataFrame, repo: Path | None) -> dict[str, float]:
    """Seconds since the epoch per commit cell: the commit's time in `repo` where git knows it, else the earliest
    `started_at` of its rows (local time, read as UTC: only the order matters)."""
    started = pd.to_datetime(frame["started_at"].replace("", None), errors="coerce")
    times = {}
    for commit, moments in started.groupby(frame["commit"]):
        earliest = moments.min()
        times[commit] = earliest.timestamp() if not pd.isna(earliest) else math.inf
        known = git_commit_time(repo, str(commit).removesuffix("-dirty")) if repo else None
        times[commit] = known if known is not None else times[commit]
    return times


@functools.cache  # every series of a commit asks again
def git_commit_time(repo: Path, commit: str) -> float | None:
    """The commit's time in `repo`; None for a cell that is not a commit hash: a results file may come from anyone,
    and a cell such as `--output=FILE` would be an option to git (it overwrote FILE with the time)."""
    if not COMMIT_HASH.fullmatch(commit):
        return None
    try:
        done = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%ct", commit, "--"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return float(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip().isdigit() else None


def ordered(frame: pd.DataFrame, repo: Path | None) -> pd.DataFrame:
    """Rows by commit time, then started_at; a `commit_order` column numbers the commits."""
    frame = frame.assign(commit=frame["git_commit"].fillna("").replace("", UNKNOWN_COMMIT))
    times = commit_times(frame, repo)
    frame = frame.assign(commit_time=frame["commit"].map(times), started=frame["started_at"].fillna(""))
    first_start = frame.groupby("commit")["started"].transform("min")
    frame = frame.assign(first_start=first_start).sort_values(["commit_time", "first_start", "commit", "started"],
                                                              kind="stable")
    return frame.assign(commit_order=pd.factorize(frame["commit"])[0]).reset_index(drop=True)


def series_of(frame: pd.DataFrame, key: str, gated: list[str], by_name: dict[str, Column],
              repo: Path | None) -> list[Series]:
    """One series per config (`key`) and environment (MUST_MATCH); the environment joins the label only where a
    config has several."""
    if frame.empty:
        return []
    environment = [column for column in MUST_MATCH if column in frame]
    frame = frame.assign(**{column: frame[column].fillna("").astype(str) for column in environment})
    found = []
    for _, config_rows in frame.groupby(key, sort=False):
        groups = list(config_rows.groupby(environment, sort=False))
        for values, rows in groups:
            label = point_label(rows.iloc[0].to_dict())
            if len(groups) > 1:
                label += " @ " + " ".join(v for v in values if v)
            found.append(Series(label, ordered(rows, repo), gated, by_name))
    return found


# ----------------------------------------------------------------------------------------------- steps
def change_points(centres: list[float], threshold: float) -> list[int]:
    """Indices where PELT puts a new level (the first commit of each new segment) in the commits' medians."""
    import numpy as np
    import ruptures

    level = float(np.median(centres))
    if len(centres) < 2 or level == 0:
        return []
    signal = np.asarray(centres, dtype=float).reshape(-1, 1) / abs(level)
    penalty = (threshold / 100) ** 2 / 2  # a one-commit step of the threshold's size at a series' end just pays
    return ruptures.Pelt(model="l2", min_size=1, jump=1).fit(signal).predict(pen=penalty)[:-1]


def steps_of(series: Series, column: str, threshold: float) -> list[dict]:
    """The steps of one column of one series that stand beyond the noise (the module docstring's rule)."""
    import statistics

    from bench.core import stats

    commits, values = series.commits(), series.values(column)
    with_values = [i for i, v in enumerate(values) if v]
    direction = series.direction(column)
    if len(with_values) < 2 or direction not in ("max", "min"):
        return []
    breaks = change_points([statistics.median(values[i]) for i in with_values], threshold)
    bounds = [0, *breaks, len(with_values)]
    spread = process_spread([values[i] for i in with_values])
    found = []
    for start, cut, end in zip(bounds, bounds[1:], bounds[2:]):
        before = [x for i in with_values[start:cut] for x in values[i]]
        after = [x for i in with_values[cut:end] for x in values[i]]
        change, verdict, needs_test = judge(before, after, direction, max(threshold, spread))
        if needs_test and stats.not_different([before], [after])[0]:
            verdict = "noise"
        if verdict in ("REGRESSION", "improved"):
            good, bad = commits[with_values[cut - 1]], commits[with_values[cut]]
            around = series.rows[series.rows["commit"].isin([commits[i] for i in with_values[start:end]])]
            found.append({"config": series.label, "metric": column, "before": number(statistics.median(before)),
                          "after": number(statistics.median(after)), "change %": f"{change:+.1f}",
                          "verdict": verdict, "last good": good, "first bad": bad,
                          "bisect": f"git log {good.removesuffix('-dirty')}..{bad.removesuffix('-dirty')}",
                          "noisy rows": f"{noisy_count(around)} of {len(around)}"})
    return found


def process_spread(commits: list[list[float]]) -> float:
    """The series' process-to-process spread in percent: over its commits measured by two or more processes, the
    largest (max - min) / median of their values (0 when none was)."""
    from bench.core.stats import median_and_spread

    spreads = [abs(spread) * 100 for values in commits if (spread := median_and_spread(values)[1]) is not None]
    return max(spreads, default=0.0)


def convergence_rows(series: Series, reference: pd.DataFrame) -> list[dict]:
    """Each commit's seeds of a config against the reference (MLPerf's gate), where the reference has its
    benchmark."""
    found = []
    for commit in series.commits():
        table = convergence.gate_table(reference, series.rows[series.rows["commit"] == commit])
        found += [row | {"commit": commit} for row in table.to_dict("records")]
    return found


# ----------------------------------------------------------------------------------------------- the command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", help="results CSVs or folders (every results.csv in or below them), "
                        "from any number of commits")
    parser.add_argument("--out", default=None, help="folder for index.html and the PNGs (default: history/ in the "
                        "first folder given, or beside the first CSV)")
    parser.add_argument("--threshold", type=float, default=5.0, help="percent change a step must exceed")
    parser.add_argument("--reference", default=None, metavar="DIR", help="reference runs (>= 5 seeds of a "
                        "benchmark) for MLPerf's convergence gate of each commit's seeds (default: none)")
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parents[2]),
                        help="git repository whose `git log` orders the commits (default: this dnnbench's checkout)")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit 1 when a step is a regression or a convergence gate fails (nightly CI)")
    parser.add_argument("--wandb", default="online" if os.environ.get("WANDB_API_KEY") else "disabled",
                        choices=("offline", "online", "disabled"), help="the series as one W&B run with line plots "
                        "(default: online when WANDB_API_KEY is set, else disabled)")
    parser.add_argument("--wandb-project", default=os.environ.get("WANDB_PROJECT") or "dnnbench",
                        help="W&B project (default: $WANDB_PROJECT, else dnnbench)")
    parser.add_argument("--wandb-entity", default=os.environ.get("WANDB_ENTITY"), help="W&B entity (default: "
                        "$WANDB_ENTITY, else your account's default)")


def main(args: argparse.Namespace) -> int:
    from bench.report.history_page import write_page

    if not (math.isfinite(args.threshold) and args.threshold > 0):
        raise ResultsError(f"--threshold must be a finite percentage > 0; got {args.threshold:g}")
    paths = [Path(p) for p in args.results]
    out = Path(args.out) if args.out else (paths[0] if paths[0].is_dir() else paths[0].parent) / "history"
    if out.exists() and not out.is_dir():
        raise ResultsError(f"history folder {out} is a file")
    results, inference = read(paths)
    reference = pd.concat([load_results(p) for p in results_files([Path(args.reference)])],
                          ignore_index=True) if args.reference else None
    repo = Path(args.repo) if args.repo else None
    every = (series_of(results, "config_id", SERIES_COLUMNS, BY_NAME, repo)
             + series_of(inference, "point_id", INFERENCE_GATED, INFERENCE_BY_NAME, repo))
    steps = [step for series in every for column in series.gated if column in series.rows
             for step in steps_of(series, column, args.threshold)]
    gates = [row for series in every if reference is not None and "config_id" in series.rows
             and "backend" not in series.rows for row in convergence_rows(series, reference)]
    if reference is not None and not gates:
        print(f"dnnbench history: warning: no config here has >= {convergence.MIN_REFERENCE_RUNS} runs of its "
              f"benchmark in {args.reference}: no convergence gate", file=sys.stderr)
    if split := environments_split(every):
        print(f"dnnbench history: warning: {split}", file=sys.stderr)
    index = write_page(out, every, steps, gates, args.threshold)
    report_console(steps, gates, index)
    if args.wandb != "disabled":
        summarize_to_wandb(every, steps, out, args)
    failed = [s for s in steps if s["verdict"] == "REGRESSION"] + [
        g for g in gates if g["verdict"] in convergence.FAILING]
    return 1 if failed and args.fail_on_regression else 0


def summarize_to_wandb(every: list[Series], steps: list[dict], out: Path, args: argparse.Namespace) -> None:
    """The series and steps as one W&B run; a failure is a warning (the page is written)."""
    from bench.integrations.wandb_history import log_history
    from bench.report.history_page import points_frame

    try:
        log_history(points_frame(every), pd.DataFrame(steps), out, args.wandb, args.wandb_project, args.wandb_entity)
        print(f"dnnbench history: W&B run `history` ({args.wandb}) in {out / 'wandb'}")
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        print(f"dnnbench history: warning: W&B summary not written ({reason})", file=sys.stderr)


def environments_split(every: list[Series]) -> str:
    split = [series.label for series in every if " @ " in series.label]
    return (f"{len(split)} series are one config on different hosts, devices or software versions, kept apart"
            if split else "")


def report_console(steps: list[dict], gates: list[dict], index: Path) -> None:
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
        if steps:
            print(pd.DataFrame(steps).to_string(index=False))
        if gates:
            print(pd.DataFrame(gates).to_string(index=False))
    regressions = sum(s["verdict"] == "REGRESSION" for s in steps)
    failing = sum(g["verdict"] in convergence.FAILING for g in gates)
    print(f"dnnbench history: {len(steps)} step(s) beyond the noise, {regressions} regression(s)"
          + (f", {failing} convergence gate(s) failed" if gates else "") + f"; page in {index}")

