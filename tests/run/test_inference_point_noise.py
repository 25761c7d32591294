"""Inference points carry their own noise reading (inference.csv version 2): other CPU use over each point's timed
calls, the results row naming the noisy points, and compare calling a noisy point's speed change noise."""

import time

import pytest
import torch

from bench.cli import main
from bench.core.columns import Status
from bench.core.inference_columns import INFERENCE_COLUMNS
from bench.core.row import Cells, RunRow
from bench.results.io import load_inference
from bench.run import inference_curve as infer_curve
from bench.run.child import with_points
from bench.run.measure import noise, point_noise
from bench.run.precision import PRECISIONS
from tests.fake_models import FakeNet
from tests.helpers import fake_config
from tests.results_fixtures import INFERENCE_CURVE, sweep_folder_with_curve, write_csv


@pytest.fixture
def other_load(monkeypatch):
    """The machine's busy CPU time grows by `cores` per second beyond the run's own (which stays 0)."""
    load = {"cores": 0.0}
    monkeypatch.setattr(point_noise, "busy_cpu_seconds", lambda cpus: time.monotonic() * load["cores"])
    monkeypatch.setattr(noise.OwnClock, "__init__", lambda self: None)
    monkeypatch.setattr(noise.OwnClock, "read", lambda self: 0.0)
    monkeypatch.setattr(point_noise, "watched_cpus", lambda: [0, 1])
    return load


def curve_rows() -> list[dict]:
    model = FakeNet().eval()
    config = fake_config(infer_backends="eager", infer_batch_sizes="1,4")
    curve = infer_curve.Curve(config, model, torch.device("cpu"), PRECISIONS["32-true"],
                              lambda batch: (model.example_input(batch),), None, ("acc", "max"),
                              time.monotonic() + 600, budget_s=0.05)
    return infer_curve.inference_rows(curve)


def test_each_point_reads_its_own_noise_and_the_row_names_the_noisy_ones(other_load):
    quiet = curve_rows()
    assert all(r["status"] == Status.OK and r["other_cpu_cores"] == pytest.approx(0.0) and r["noise_warning"] == ""
               for r in quiet)
    other_load["cores"] = 2.0  # two CPU hogs while the points are timed
    loud = curve_rows()
    assert all(r["other_cpu_cores"] == pytest.approx(2.0, rel=0.01) for r in loud)
    assert all("other processes used 2.0 of 2 CPU cores" in r["noise_warning"] for r in loud)
    row = RunRow(fake_config()).add(Cells({"noise_warning": ""}))
    assert with_points(row, quiet).get("noise_warning") == ""
    assert with_points(row, loud).get("noise_warning") == \
        "inference points timed beside other load: eager bs1, eager bs4"
    assert set(loud[0]) <= set(INFERENCE_COLUMNS)  # the writer takes every cell


def test_compare_calls_a_noisy_points_slowdown_noise_and_a_quiet_ones_a_regression(tmp_path, capsys):
    base = sweep_folder_with_curve(tmp_path / "base", INFERENCE_CURVE)
    slow = {"infer_samples_per_s": 500.0, "latency_p50_ms": 30.0}

    def slower(name, warning):
        return sweep_folder_with_curve(tmp_path / name, [
            p | slow | {"noise_warning": warning} if p["backend"] == "onnxruntime" and p["infer_batch_size"] == 16
            else p for p in INFERENCE_CURVE])

    noisy = slower("noisy", "shared device: other processes used 2.0 of 2 CPU cores")
    assert main(["compare", str(base / "results.csv"), str(noisy / "results.csv")]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime infer-bs16" in out and "REGRESSION" not in out and "noise" in out
    quiet = slower("quiet", "")
    assert main(["compare", str(base / "results.csv"), str(quiet / "results.csv")]) == 1


def test_a_version_1_inference_csv_reads_with_empty_noise_columns(tmp_path):
    old = [column for column in INFERENCE_COLUMNS if column not in ("other_cpu_cores", "noise_warning")]
    write_csv(tmp_path / "inference.csv", [{c: p[c] for c in old} | {"schema_version": 1} for p in INFERENCE_CURVE],
              old)
    frame = load_inference(tmp_path / "inference.csv")
    assert len(frame) == len(INFERENCE_CURVE) and set(frame["noise_warning"]) == {""}
    assert frame["other_cpu_cores"].isna().all()

