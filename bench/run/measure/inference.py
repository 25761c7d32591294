"""Inference latency and throughput of eval-mode forward passes on the run's device and precision.

A percentile is only reported when it is one: p90/p95 need at least 100 timed calls, p99 at least 1,000 (below
that the tail percentile is the slowest call or two, not a percentile). Timing takes calls until it has 1,000 (over at
least 0.2 s) or a time budget is spent; cells it could not fill stay empty, and the note says why.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from bench.core.row import Columns
from bench.run.measure.steps import batch_size_of, synchronize
from bench.run.precision import Precision

WARMUP_CALLS = 5  # cudnn autotune, allocator, (re)compilation of the eval graph
MIN_CALLS, MAX_CALLS = 10, 1000  # timed calls: at least 10 (p50), then until the budget is spent or 1,000 (p99) ...
# ... that span MIN_TIMED_S at least: 1,000 calls of a tiny model (10 us) are 10 ms, in which one preemption or one
# slow phase of a shared CPU moves the mean (the CPU throughput) and even the median by 20 % from process to process
# (issue 31: history flagged such steps between identical builds); 0.2 s of them average over the machine's moods.
MIN_TIMED_S = 0.2
BUDGET_S, SMOKE_BUDGET_S = 3.0, 0.5  # seconds of timed calls a run may spend (smoke: tests and trial runs)
# quick (make bench's default): 0.5 s, as smoke. Honest because a percentile is only reported over enough calls
# (NEEDED_CALLS): calls under 0.5 ms still reach all 1,000 and every percentile, calls of 0.5-5 ms keep p50-p95 over
# >= 100 and leave p99 empty (as 3-10 ms ones already do at 3 s), slower calls keep p50 only; latency_samples and the
# message say so. Each row of a quick sweep saves up to 2.5 s of timed calls (and, on a GPU, as much of back-to-back
# ones): ~14 s of make bench's 24 rows on 2 CPU cores, where its 240 s goal (issue 21) needed them.
QUICK_BUDGET_S = 0.5
BUDGETS_S = {"smoke": SMOKE_BUDGET_S, "quick": QUICK_BUDGET_S}  # other profiles: BUDGET_S
BACK_TO_BACK_CALLS = 100  # at most, for the throughput
NEEDED_CALLS = {0.5: MIN_CALLS, 0.9: 100, 0.95: 100, 0.99: 1000}  # a percentile's minimum sample


@dataclass(frozen=True)
class Latency(Columns):
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    latency_samples: int
    infer_samples_per_s: float

    def note(self, budget_s: float = BUDGET_S) -> str:
        """Why tail percentiles are empty ("" when all are filled)."""
        missing = [f"p{round(q * 100)}" for q, needed in NEEDED_CALLS.items() if self.latency_samples < needed]
        if not missing:
            return ""
        needs = ", ".join(f"p{round(q * 100)} >= {n}" for q, n in NEEDED_CALLS.items() if n > MIN_CALLS)
        return (f"latency {'/'.join(missing)} empty: {self.latency_samples} calls timed within {budget_s:g} s "
                f"(a percentile needs calls: {needs})")



def as_args(example: Any) -> tuple:
    return example if isinstance(example, tuple) else (example,)


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values; None when there are too few of them for it to be one."""
    if len(ordered) < NEEDED_CALLS.get(q, 1):
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def timed_calls(call, device: torch.device, budget_s: float = BUDGET_S) -> list[float]:
    """Seconds of each call, each alone: CUDA events around it on a GPU, the host waiting after each."""
    latencies: list[float] = []
    started = time.perf_counter()
    while len(latencies) < MIN_CALLS or (time.perf_counter() - started < budget_s and (
            len(latencies) < MAX_CALLS or time.perf_counter() - started < MIN_TIMED_S)):
        if device.type == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            call()
            end.record()
            end.synchronize()
            latencies.append(begin.elapsed_time(end) / 1e3)
        else:
            start = time.perf_counter()
            call()
            latencies.append(time.perf_counter() - start)
    return latencies


def back_to_back_seconds(call, device: torch.device, calls: int) -> float:
    """Seconds per call of `calls` calls issued back to back, the host waiting only at the end."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(calls):
        call()
    synchronize(device)
    return (time.perf_counter() - start) / calls


@torch.no_grad()
def inference_timing(model: torch.nn.Module, args: tuple, device: torch.device, precision: Precision,
                     budget_s: float = BUDGET_S) -> Latency:
    """Latency percentiles (ms) of single forward passes and samples/s of back-to-back ones (on a CPU, those same
    calls), at the inputs' batch."""
    model.eval()
    with precision.autocast(device.type):
        def call():
            return model(*args)

        for _ in range(WARMUP_CALLS):
            call()
        synchronize(device)
        latencies = sorted(timed_calls(call, device, budget_s))
        # A CPU call returns with its work done, so the calls just timed one by one already ran back to back: their
        # mean is the throughput's time per call (timing them again cost slow models as long as the latencies did).
        per_call = sum(latencies) / len(latencies) if device.type == "cpu" else \
            back_to_back_seconds(call, device, min(len(latencies), BACK_TO_BACK_CALLS))
    ms = [s * 1e3 for s in latencies]
    return Latency(*(percentile(ms, q) for q in NEEDED_CALLS), len(ms), batch_size_of(args) / per_call)  # type: ignore[arg-type, call-arg]
