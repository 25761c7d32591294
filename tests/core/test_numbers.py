"""The report's numbers for people: 3 significant figures, thousands separators, float noise as 0, drift in words,
headers with their unit once."""

import pytest

from bench.core.numbers import drift_words, human, human_header, step_of


@pytest.mark.parametrize(("value", "text"), [
    (45706, "45,700"), (5994.74, "5,990"), (2117000, "2.12 M"), (999999, "1 M"), (6.70003e6, "6.7 M"),
    (0.004133, "0.00413"), (0.962, "0.962"), (92400, "92,400"), (1000.0, "1,000"), (2.80804, "2.81"),
    (-0.012, "-0.012"), (0, "0"), (float("nan"), ""), (None, ""), ("oom", "oom"),
])
def test_three_significant_figures_with_thousands_separators(value, text):
    assert human(value) == text


def test_a_value_below_the_precision_of_what_it_is_compared_with_reads_0():
    assert step_of(0.962) == pytest.approx(0.001)
    assert human(-0.000000007629, step=step_of(0.962)) == "0"
    assert human(0.03622, step=step_of(0.962)) == "0.036"  # a spread to its centre's last digit
    assert human(0.005, signed=True) == "+0.005"


def test_quality_drift_says_its_direction_by_the_metric():
    assert drift_words(-0.012, 0.962, "max") == "0.012 worse"
    assert drift_words(0.005, 0.962, "max") == "0.005 better"
    assert drift_words(-0.003, 0.0186, "min") == "0.003 better"  # a lower loss is better
    assert drift_words(-0.000000007629, 0.962, "max") == "no change"
    assert drift_words(float("nan"), 0.962, "max") == ""


def test_headers_spell_the_unit_once():
    assert human_header("time_to_target_s") == "time to target (s)"
    assert human_header("latency_p50_ms") == "latency p50 (ms)"
    assert human_header("train_samples_per_s") == "train (samples/s)"
    assert human_header("peak_rss_mb") == "peak rss (MiB)"
    assert human_header("data_wait_fraction") == "data wait fraction"
    assert human_header("params") == "params"


def test_cudnn_reads_as_its_version():
    from bench.report.tables import cudnn_version

    assert (cudnn_version("92400"), cudnn_version("90100"), cudnn_version("8902")) == ("9.24.0", "9.1.0", "8.9.2")
    assert cudnn_version("none recorded") == "none recorded"
