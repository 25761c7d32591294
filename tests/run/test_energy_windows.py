"""NVML energy over a timed window shorter than the counter needs says so in the row's note (NVML spec'd from the
installed nvidia-ml-py: tests/fake_nvml.py); a window of a second or more, or RAPL's counter, has no such note."""

from __future__ import annotations

import sys
import types

from bench.run.measure import energy
from bench.run.measure.energy import RunEnergy
from tests.fake_nvml import fake_nvml


def metered(monkeypatch, seconds: float) -> str:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(energy_mj=[0, 1_000_000, 1_250_000]))
    clock = iter([100.0, 100.0 + seconds])  # perf_counter where the sub-window opens and where it closes
    monkeypatch.setattr(energy.time, "perf_counter", lambda: next(clock))
    run = RunEnergy("cuda")
    window = types.SimpleNamespace(timing_done=False, windows=[], listeners=[])
    window.timed_samples = lambda: sum(n for _, n, _ in window.windows)  # as SpeedWindow's, nothing open
    meter = run.over_window(window)
    meter.opened()
    window.timing_done, window.windows = True, [(10, 1000, seconds)]
    meter.closed()
    row = run.result()
    assert row.energy_source == "nvml" and row.train_joules_per_sample == 0.25
    return row.energy_note


def test_a_short_nvml_window_is_said_to_be_unreliable(monkeypatch):
    assert "train energy over 0.40 s of timed steps: under 1 s NVML's counter" in metered(monkeypatch, 0.4)


def test_a_window_of_a_second_or_more_has_no_such_note(monkeypatch):
    assert "timed steps" not in metered(monkeypatch, 1.5)
