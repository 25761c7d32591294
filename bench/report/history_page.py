"""The history page (step: series over commits and their steps -> index.html and one PNG per series, no server)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bench.core.columns import heading
from bench.core.private_files import READABLE, private_folder, replace_file
from bench.report.plots import save_png
from bench.report.render import STYLE, figure, html_table

if TYPE_CHECKING:
    from bench.report.history_series import Series

STEPS_NOTE = ("Steps that PELT (ruptures) found in the commits' medians and that stand beyond the noise by compare's "
              "rule on the rows either side; bisect with the `git log` range shown.")
GATE_NOTE = ("MLPerf's reference convergence points: each commit's seeds against the reference's epochs and steps to "
             "the target (one-sided t-test, p < 0.05; more than one run that missed the target: INVALID).")
CHART_NOTE = ("Each point is one commit: the median of its rows, the bar their range (a single run: the range of its "
              "speed windows where the column has one); a dashed line marks a step beyond the noise.")


def point_spread(series: Series, column: str) -> tuple[list[float], list[float], list[float]]:
    """(median, low, high) per commit with values: the rows' range, or one row's own window spread."""
    spread_column = f"{column}_spread"
    centres, lows, highs = [], [], []
    for commit, values in zip(series.commits(), series.values(column)):
        if not values:
            continue
        centre = float(pd.Series(values).median())
        low, high = min(values), max(values)
        if len(values) == 1 and spread_column in series.rows:
            within = series.rows.loc[series.rows["commit"] == commit, spread_column].dropna()
            if not within.empty:
                low, high = centre * (1 - within.iloc[0] / 2), centre * (1 + within.iloc[0] / 2)
        centres.append(centre)
        lows.append(centre - low)
        highs.append(high - centre)
    return centres, lows, highs


def series_chart(series: Series, steps: list[dict], path: Path) -> Path | None:
    """One panel per column with values at two or more commits; None when there is none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in series.gated if c in series.rows and sum(map(bool, series.values(c))) >= 2]
    if not columns:
        return None
    fig, axes = plt.subplots(len(columns), 1, figsize=(8, 2.2 * len(columns) + 0.6), layout="constrained",
                             squeeze=False)
    for ax, column in zip(axes[:, 0], columns):
        commits = [c for c, v in zip(series.commits(), series.values(column)) if v]
        centres, lows, highs = point_spread(series, column)
        ax.errorbar(range(len(commits)), centres, yerr=[lows, highs], marker="o", capsize=3)
        for step in (s for s in steps if s["config"] == series.label and s["metric"] == column):
            where = commits.index(step["first bad"]) - 0.5
            ax.axvline(where, color="red" if step["verdict"] == "REGRESSION" else "green", linestyle="--")
        ax.set_ylabel(heading(column), fontsize=8)
        ax.set_xticks(range(len(commits)), commits, rotation=30, fontsize=8)
    fig.suptitle(series.label, fontsize=9)
    save_png(fig, path, dpi=90)
    return path


def file_name(number_: int, label: str) -> str:
    return f"{number_:03d}-{re.sub(r'[^A-Za-z0-9.=-]+', '_', label)[:80]}.png"


def series_table(every: list[Series]) -> pd.DataFrame:
    return pd.DataFrame([{"series": s.label, "commits": len(s.commits()), "rows": len(s.rows),
                          "first": s.commits()[0], "last": s.commits()[-1]} for s in every])


def points_frame(every: list[Series]) -> pd.DataFrame:
    """One row per series, metric and commit with values: the median and the spread the charts draw (for W&B)."""
    rows = []
    for series in every:
        for column in (c for c in series.gated if c in series.rows):
            commits = [c for c, v in zip(series.commits(), series.values(column)) if v]
            for order, (commit, centre, low, high) in enumerate(zip(commits, *point_spread(series, column))):
                rows.append({"series": series.label, "metric": column, "commit_order": order, "commit": commit,
                             "median": centre, "low": centre - low, "high": centre + high})
    return pd.DataFrame(rows, columns=["series", "metric", "commit_order", "commit", "median", "low", "high"])


def write_page(out: Path, every: list[Series], steps: list[dict], gates: list[dict], threshold: float) -> Path:
    """index.html with the steps, the convergence gates, the series and their charts; returns its path."""
    private_folder(out, "history folder")  # the files in it are replaced, never written through a link
    charts = [series_chart(series, steps, out / file_name(n, series.label)) for n, series in enumerate(every)]
    sections = [("Steps beyond the noise", f"{STEPS_NOTE} Threshold {threshold:g} %.",
                 pd.DataFrame(steps) if steps else None)]
    if gates:
        sections.append(("Convergence against the reference", GATE_NOTE, pd.DataFrame(gates)))
    sections.append(("Series", "One per config and machine/software stack (hosts, devices and versions apart).",
                     series_table(every) if every else None))
    title = f"dnnbench history: {len(every)} series, {len(steps)} step(s)"
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [] if steps else ["<p class=badge>No step beyond the noise in any series.</p>"]
    for number_, (section_title, note, table) in enumerate(sections):
        body.append(f"<h2>{html.escape(section_title)}</h2><p class=note>{html.escape(note)}</p>")
        body.append(html_table(table, number_) if table is not None else "")
    body += ["<h2>Series over commits</h2>", f"<p class=note>{html.escape(CHART_NOTE)}</p>"]
    body += [figure(chart.name, chart.stem) for chart in charts if chart]
    replace_file(out / "index.html", f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
                 f"</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n", READABLE)
    return out / "index.html"
