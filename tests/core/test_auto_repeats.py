"""bench/core/stats.py's interval of the median and pyperf's signs, and bench/core/auto_repeats.py's stopping rule,
on synthetic throughputs (no process runs)."""

import math
import random

import pytest

from bench.core import stats
from bench.core.auto_repeats import AutoRepeats, decision_line
from bench.core.config import RunConfig
from bench.core.repeats_columns import Outcome

CPU = RunConfig(model="cnn", datamodule="mnist5k", device="cpu", seed=7)


@pytest.mark.parametrize("n, j, coverage", [
    (2, 1, 0.5), (3, 1, 0.75), (5, 1, 1 - 2 / 32),  # below 6: the whole range, with the coverage it has
    (6, 1, 1 - 2 / 64), (10, 2, 1 - 2 * 11 / 1024), (20, 6, None),  # tables of the binomial(n, 1/2)
])
def test_the_median_interval_is_the_order_statistic_pair_that_keeps_95_percent(n, j, coverage):
    values = [float(v) for v in random.Random(n).sample(range(1000), n)]
    interval = stats.median_interval(values)
    ordered = sorted(values)
    assert (interval.low, interval.high) == (ordered[j - 1], ordered[n - j])
    expected = 1 - 2 * sum(math.comb(n, i) for i in range(j)) / 2**n
    assert interval.coverage == pytest.approx(coverage if coverage is not None else expected)
    assert interval.reaches() == (n >= 6)
    narrower = 1 - 2 * sum(math.comb(n, i) for i in range(j + 1)) / 2**n  # the next pair in falls below 95 %
    assert n < 6 or narrower < 0.95


def test_the_interval_is_distribution_free_it_holds_the_median_95_percent_of_the_time():
    rng, n, hits, trials = random.Random(0), 12, 0, 4000
    for _ in range(trials):  # a skewed distribution whose median is ln 2
        interval = stats.median_interval([rng.expovariate(1.0) for _ in range(n)])
        hits += interval.low <= math.log(2) <= interval.high
    assert hits / trials >= 0.95 - 0.01


def test_precise_enough_needs_95_percent_and_the_half_width_within_the_target():
    tight = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2]
    assert stats.precise_enough(tight, 0.05)
    assert not stats.precise_enough(tight[:5], 0.05)  # 5 values never reach 95 %
    assert not stats.precise_enough(tight, 0.005)
    wide = [100.0, 130.0, 70.0, 100.0, 120.0, 80.0]
    assert not stats.precise_enough(wide, 0.05) and stats.precise_enough(wide, 0.31)


def test_pyperf_instability_signs():
    assert stats.instability([100.0, 100.0]) == [] and stats.instability([100.0]) == []
    steady = [100.0 + 0.1 * i for i in range(5)]
    assert stats.instability(steady) == []
    noisy = [60.0, 100.0, 140.0]
    signs = stats.instability(noisy)
    assert any(s.startswith("std 40% of the mean") for s in signs), signs
    assert any("needed for ±1 % at 95 %" in s for s in signs)
    outlier = [100.0] * 9 + [400.0]
    assert any(s.startswith("max") and "above the mean" in s for s in stats.instability(outlier))
    cv = 0.05  # pyperf's required_nprocesses: ceil(4 * 1.96^2 * CV^2 / 0.01^2)
    values = [1 - cv, 1 + cv]  # stdev / mean = cv * sqrt(2)
    assert stats.required_processes(values) == math.ceil(4 * 1.96**2 * (cv * math.sqrt(2)) ** 2 / 0.01**2)


def rows(throughputs, status="ok", wall_s=10.0):
    return [{"status": status, "train_samples_per_s": str(t), "repeat": str(i), "wall_s": str(wall_s)}
            for i, t in enumerate(throughputs)]


def test_the_stopping_rule_runs_until_the_interval_is_within_the_target():
    auto = AutoRepeats(target_pct=5)
    rng = random.Random(1)
    seen = []
    while True:
        seen.append(1000 * (1 + rng.uniform(-0.02, 0.02)))
        outcome = auto.outcome(CPU, rows(seen))
        if outcome is not None:
            break
        following = auto.next_run(CPU, rows(seen))
        assert (following.repeat, following.seed) == (len(seen), CPU.seed + len(seen))
    assert outcome is Outcome.MET and len(seen) == 6  # the first count at which 95 % exists


def test_the_stopping_rule_stops_at_the_caps_and_on_a_failed_process():
    noisy = [1000.0, 1500.0, 700.0, 1200.0, 800.0, 1400.0, 650.0]
    assert AutoRepeats(target_pct=5, max_repeats=20).outcome(CPU, rows(noisy)) is None
    assert AutoRepeats(target_pct=5, max_repeats=7).outcome(CPU, rows(noisy)) is Outcome.MAX_REPEATS
    # 7 processes of 10 s: an 8th would pass 75 s
    assert AutoRepeats(target_pct=5, max_seconds=75).outcome(CPU, rows(noisy)) is Outcome.MAX_SECONDS
    failed = rows(noisy[:2]) + [{"status": "error", "train_samples_per_s": "", "repeat": "2", "wall_s": "1"}]
    assert AutoRepeats().outcome(CPU, failed) is Outcome.FAILED


def test_the_default_target_is_the_devices_and_the_decision_row_says_what_was_reached():
    assert AutoRepeats().target(CPU) == 5 and AutoRepeats().target(CPU.but(device="cuda")) == 2
    auto = AutoRepeats(max_repeats=3)
    done = rows([900.0, 1000.0, 1100.0])
    cells = auto.decision(CPU, done, auto.outcome(CPU, done))
    assert cells["outcome"] == "max-repeats" and cells["processes"] == 3 and cells["runs"] == 3
    assert (cells["ci_low"], cells["median_samples_per_s"], cells["ci_high"]) == (900.0, 1000.0, 1100.0)
    assert cells["ci_coverage"] == 0.75 and cells["precision_pct"] == pytest.approx(10.0)
    assert cells["model"] == "cnn" and "seed" not in cells and cells["seconds"] == 30.0
    line = decision_line(CPU.label(), cells)
    assert "[900, 1,100] (±10.0 %, 75% coverage)" in line and "--max-repeats before ±5 %" in line
    cells |= {"median_samples_per_s": 3737.2, "ci_low": 3628.0, "ci_high": 12345.0}
    assert "median 3,740 samples/s, interval [3,630, 12,300]" in decision_line(CPU.label(), cells)
