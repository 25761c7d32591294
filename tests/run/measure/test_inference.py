"""bench/run/measure/inference.py: latency percentiles with their sample counts, and CPU throughput."""

import time

import pytest
import torch

from bench.run.measure import inference
from bench.run.measure.inference import Latency
from bench.run.precision import PRECISIONS


def test_latency_percentiles_carry_their_sample_count_and_stay_empty_below_it():
    model, args = torch.nn.Linear(4, 2), (torch.randn(3, 4),)
    precision = PRECISIONS["32-true"]
    few = inference.inference_timing(model, args, torch.device("cpu"), precision, budget_s=0.0)
    assert few.latency_samples == inference.MIN_CALLS and few.latency_p50_ms > 0
    assert few.latency_p90_ms is few.latency_p95_ms is few.latency_p99_ms is None
    assert "p90/p95/p99 empty: 10 calls" in few.note(0.0)
    full = inference.inference_timing(model, args, torch.device("cpu"), precision, budget_s=60.0)
    assert full.latency_samples >= inference.MAX_CALLS == 1000 and full.note() == ""
    assert full.latency_p50_ms <= full.latency_p90_ms <= full.latency_p95_ms <= full.latency_p99_ms
    some = Latency(1.0, 2.0, 2.0, None, 400, 10.0)
    assert some.note(3.0).startswith("latency p99 empty: 400 calls timed within 3 s")


def test_microsecond_calls_are_timed_over_0_2_s_not_1000_calls_of_a_few_ms():
    """1,000 calls of a tiny model are a few ms: a preemption there moves the mean by tens of percent (issue 31)."""
    started = time.perf_counter()
    calls = inference.timed_calls(lambda: None, torch.device("cpu"), budget_s=5.0)
    spent = time.perf_counter() - started
    assert len(calls) > inference.MAX_CALLS and inference.MIN_TIMED_S <= spent < 5.0
    slow = inference.timed_calls(lambda: time.sleep(0.001), torch.device("cpu"), budget_s=60.0)
    assert len(slow) == inference.MAX_CALLS  # 1,000 calls of 1 ms span more than 0.2 s: enough


def test_cpu_inference_throughput_is_the_timed_calls_mean_not_a_second_timing(monkeypatch):
    """A CPU call returns done: its calls are not timed a second time (a GPU times them again, back to back)."""
    class SlowLinear(torch.nn.Linear):
        def forward(self, x):
            time.sleep(0.002)
            return super().forward(x)

    again = []
    monkeypatch.setattr(inference, "back_to_back_seconds", lambda *a: again.append(a) or 1.0)
    measured = inference.inference_timing(SlowLinear(4, 2), (torch.randn(3, 4),), torch.device("cpu"),
                                          PRECISIONS["32-true"], budget_s=0.05)
    assert not again and 10 <= measured.latency_samples < 1000
    assert 3 * 1e3 / measured.infer_samples_per_s == pytest.approx(measured.latency_p50_ms, rel=0.5)
    assert measured.infer_samples_per_s < 3 / 0.002  # each call's 2 ms are in it
