"""Statistics over repeats and windows (step: numbers to summaries, for measurement, report and compare)."""

from __future__ import annotations

import statistics

import numpy as np

P_NOISE = 0.05  # compare: a change whose Mann-Whitney p-value is at least this is noise


def olympic_mean(values: list[float]) -> float:
    """MLPerf's olympic mean: drop the fastest and the slowest, average the rest."""
    ordered = sorted(values)
    return statistics.fmean(ordered[1:-1])


def summarize(values: list[float]) -> tuple[float, float | None]:
    """(centre, spread) of repeats: olympic mean with >= 5, median otherwise; spread = max - min."""
    if not values:
        return float("nan"), None
    centre = olympic_mean(values) if len(values) >= 5 else statistics.median(values)
    return centre, (max(values) - min(values)) if len(values) > 1 else None


def windowed_rates(amounts: list[float], seconds: list[float], window: int) -> list[float]:
    """Rates (sum of amounts / sum of seconds) over consecutive windows of `window` steps; a short tail counts."""
    rates = []
    for start in range(0, len(seconds), window):
        elapsed = sum(seconds[start:start + window])
        if elapsed > 0:
            rates.append(sum(amounts[start:start + window]) / elapsed)
    return rates


def median_and_spread(rates: list[float]) -> tuple[float | None, float | None]:
    """The median rate and (max - min) / median: how far apart the windows were."""
    if not rates:
        return None, None
    centre = statistics.median(rates)
    return centre, (max(rates) - min(rates)) / centre if len(rates) > 1 and centre else None


def not_different(base: list[list[float]], new: list[list[float]]) -> list[bool]:
    """For pairs of samples of equal sizes, whether two-sided Mann-Whitney U finds no difference (p >= P_NOISE).

    One vectorised scipy call: one call per test costs ~2 ms of overhead, most of compare's time on big files.
    """
    from scipy.stats import mannwhitneyu

    pvalues = np.atleast_1d(mannwhitneyu(np.array(base), np.array(new), alternative="two-sided", axis=1).pvalue)
    return [bool(p >= P_NOISE) for p in pvalues]
