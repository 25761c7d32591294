"""Statistics over repeats and windows (step: numbers to summaries, for measurement, report and compare)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

# Windows of one run further apart than this make a run unsteady. On the 2-core reference VM the windows of one run
# spread 10-70 % and separate processes of one config differed by 10-20 % either way (warm vs fresh interpreter,
# alternating, quiet: cnn 1.18, resnet 0.94): the machine's, not the launch's. Nearly every sweep there has an
# unsteady run, so that alone says nothing: the sweep suggests --repeats only where it changes a conclusion, when two
# of its configs one setting apart (32-true vs bf16-mixed of a model) have throughputs closer than the larger of
# their spreads (and that spread is at least this): which of the two is faster could then come out either way.
UNSTEADY_SPREAD = 0.10

P_NOISE = 0.05  # compare: a change whose Mann-Whitney p-value is at least this is noise
# compare, one run a side: a timing metric (throughput, latency, time to target) that moved less than this is noise,
# whatever --threshold says. Separate processes of one config differed by 10-20 % either way on the reference VM
# (above), so one run against one run cannot show a smaller change; --repeats can.
SINGLE_RUN_NOISE = 0.20


def olympic_mean(values: list[float]) -> float:
    """MLPerf's olympic mean: drop the fastest and the slowest, average the rest."""
    ordered = sorted(values)
    return statistics.fmean(ordered[1:-1])


@dataclass(frozen=True)
class TimeToTrain:
    """MLPerf's time-to-train of one config over its seeds."""

    seconds: float | None  # the olympic mean (the plain mean below 3 runs); None when a run that missed stays in
    reached: int  # runs that reached the target
    runs: int  # every run of the config, failed ones included (MLPerf counts them as not converged)
    fastest: float | None
    slowest: float | None  # of the runs that reached
    rule: str  # how `seconds` was taken, in words

    @property
    def count(self) -> str:
        return f"{self.reached} of {self.runs}"


def time_to_train(times: list[float | None]) -> TimeToTrain:
    """Time-to-train over seeds the MLPerf way: each run's time-to-target, None for a run that did not reach the target
    (it counts as infinitely slow). From 3 runs the fastest and the slowest are dropped and the rest averaged, so one
    run that missed is dropped as the slowest and two or more leave no time. With 1 or 2 runs there is nothing to
    drop: the plain mean, defined only when every run reached the target."""
    reached = sorted(t for t in times if t is not None)
    ordered = reached + [math.inf] * (len(times) - len(reached))
    kept = ordered[1:-1] if len(ordered) >= 3 else ordered
    seconds = statistics.fmean(kept) if kept and math.isfinite(kept[-1]) else None
    rule = (f"olympic mean of {len(times)} (fastest and slowest dropped)" if len(times) >= 3
            else "mean of 2 (under 3 runs: none dropped)" if len(times) == 2 else "single run" if times else "no runs")
    return TimeToTrain(seconds, len(reached), len(times), reached[0] if reached else None,
                       reached[-1] if reached else None, rule)


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


def closer_than_spread(a: float, b: float, spread_a: float, spread_b: float) -> bool:
    """Whether two single runs' throughputs are closer than their windows' larger spread (a relative gap against a
    relative spread), the spread being at least UNSTEADY_SPREAD: one run each cannot say which is faster."""
    spread = max(spread_a, spread_b)
    return spread >= UNSTEADY_SPREAD and min(a, b) > 0 and abs(a - b) / min(a, b) < spread
