"""bench/core/stats.py: medians with their spread, the olympic mean and time-to-train over seeds."""

import pytest

from bench.core.stats import olympic_mean, summarize, time_to_train


def test_repeats_show_median_and_spread_and_olympic_mean():
    assert summarize([3.0, 1.0, 2.0]) == (2.0, 2.0)
    assert olympic_mean([1.0, 2.0, 3.0, 4.0, 100.0]) == 3.0
    assert summarize([1.0, 2.0, 3.0, 4.0, 100.0])[0] == 3.0


@pytest.mark.parametrize("times, seconds, reached, rule", [
    ([50, 10, 30, 20, 40], 30.0, 5, "olympic mean of 5"),
    ([50, 10, 30, None, 40], 40.0, 4, "olympic mean of 5"),  # the run that missed is dropped as the slowest
    ([50, None, 30, None, 40], None, 3, "olympic mean of 5"),  # two missed: one stays in, no time
    ([10, 20], 15.0, 2, "mean of 2"),
    ([10, None], None, 1, "mean of 2"),
])
def test_time_to_train_is_the_olympic_mean_with_missed_runs_as_the_slowest(times, seconds, reached, rule):
    result = time_to_train(times)
    assert result.seconds == (pytest.approx(seconds) if seconds is not None else None)
    assert (result.reached, result.runs) == (reached, len(times)) and result.rule.startswith(rule)
