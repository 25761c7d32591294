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


# ----------------------------------------------------------------------------------------------- over processes
CONFIDENCE = 0.95  # of the interval around a config's median throughput over its processes (`--repeats auto`)


@dataclass(frozen=True)
class MedianInterval:
    """A distribution-free confidence interval of the median from order statistics (Conover, Practical
    Nonparametric Statistics, 3rd ed., §3.2): for n values sorted, [x_(j), x_(n+1-j)] covers the true median with
    probability 1 - 2 P(B <= j - 1), B ~ Binomial(n, 1/2), whatever the distribution. `j` is the largest that keeps
    that coverage at or above the confidence asked; below 6 values no pair reaches 95 %, and the interval is the
    whole range with the coverage it has (n = 3: 75 %)."""

    median: float
    low: float
    high: float
    coverage: float  # the probability that [low, high] holds the median: at least the confidence asked from n >= 6
    n: int

    @property
    def half_width(self) -> float:
        """The interval's farther end from the median, relative to it: ±this is the precision reached."""
        return max(self.median - self.low, self.high - self.median) / self.median if self.median else math.inf

    def reaches(self, confidence: float = CONFIDENCE) -> bool:
        return self.coverage >= confidence - 1e-12


def median_interval(values: list[float], confidence: float = CONFIDENCE) -> MedianInterval:
    """The order-statistic interval of the median of `values` (at least one)."""
    ordered, n = sorted(values), len(values)
    if not n:
        raise ValueError("no values")

    def coverage(j: int) -> float:  # of [x_(j), x_(n+1-j)], 1-based
        return 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2**n

    j = 1
    while j + 1 <= (n + 1) // 2 and coverage(j + 1) >= confidence:
        j += 1
    return MedianInterval(statistics.median(ordered), ordered[j - 1], ordered[n - j], coverage(j), n)


def precise_enough(values: list[float], target: float, confidence: float = CONFIDENCE) -> bool:
    """The `--repeats auto` stopping rule: the median's interval reaches the confidence and lies within ±target (a
    fraction: 0.05 for 5 %) of the median."""
    if len(values) < 2:
        return False
    interval = median_interval(values, confidence)
    return interval.reaches(confidence) and interval.half_width <= target


def required_processes(values: list[float], error: float = 0.01, z: float = 1.96) -> int | None:
    """pyperf's `required_nprocesses`: ⌈4 z² CV² / error²⌉, the values a mean within ±1 % at 95 % needs (Box, Hunter
    and Hunter's sample-size rule; CV = stdev / mean of the processes' values)."""
    if len(values) < 2 or not statistics.fmean(values):
        return None
    cv = statistics.stdev(values) / statistics.fmean(values)
    return math.ceil(4 * z**2 * cv**2 / error**2)


def instability(values: list[float]) -> list[str]:
    """pyperf's signs that a result may be unstable (pyperf `check`), over one config's processes' values."""
    if len(values) < 2:
        return []
    mean, stdev = statistics.fmean(values), statistics.stdev(values)
    signs = []
    if mean and stdev / mean >= 0.10:
        signs.append(f"std {stdev / mean:.0%} of the mean")
    for name, value in (("min", min(values)), ("max", max(values))):
        if mean and abs(value - mean) / mean >= 0.50:
            signs.append(f"{name} {abs(value - mean) / mean:.0%} {'below' if value < mean else 'above'} the mean")
    needed = required_processes(values)
    if needed is not None and needed > len(values):
        signs.append(f"{len(values)} processes < {needed} needed for ±1 % at 95 %")
    return signs
