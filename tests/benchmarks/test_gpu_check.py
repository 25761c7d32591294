"""`make gpu-check`'s script in its reduced CPU form on a very small subset: the bundle (at most 8 files) and a
verdict computed from its CSVs."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from benchmarks import gpu_check
from benchmarks.gpu_check_verdict import overhead_bars
from tests.helpers import ROOT
from tests.results_fixtures import make_row, write_csv


@pytest.mark.integration
def test_reduced_form_writes_the_bundle_and_the_verdict(tmp_path):
    out = tmp_path / "bundle"
    result = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", str(out), "--device", "cpu", "--models",
                             "mlp", "--large-models", "", "--overhead-models", "", "--repeat-models", "",
                             "--check-args=--no-probe", "--no-pytest"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    files = {path.name for path in out.iterdir()}
    assert len(files) <= 8 and {"results.csv", "overhead.csv", "steps.csv", "summary.md", "check.txt",
                                "verdict.md"} <= files
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert sorted((r["model"], r["precision"], r["status"]) for r in rows) == [
        ("mlp", "32-true", "ok"), ("mlp", "bf16-mixed", "ok")]
    verdict = (out / "verdict.md").read_text()
    assert "| every cpu row ok in 32-true, bf16-mixed | MET | 2 of 2 ok [judged: classic 32-true: mlp; classic " \
        "bf16-mixed: mlp] |" in verdict
    assert "energy: nonzero over >= 1 s" in verdict and "the whole command within 6 minutes" in verdict
    assert "dnnbench check" in (out / "check.txt").read_text()
    steps = list(csv.DictReader(open(out / "steps.csv")))
    assert [s["step"] for s in steps] == ["dnnbench check", "overhead", "pytest -m gpu", "sweep"]
    assert steps[2]["exit_code"] == "skipped (no CUDA)" and steps[1]["exit_code"] == "skipped (none chosen)"
    assert steps[0]["summary"].startswith("dnnbench check:")  # its verdict line


def test_overhead_bars_judge_the_ratios():
    rows = [{"model": "cnn", "size": "classic", "status": "ok", "runner_over_bare": 0.99, "device_over_expert": 0.97,
             "runner_over_expert": 0.9},
            {"model": "resnet", "size": "large", "status": "ok", "runner_over_bare": 0.93, "device_over_expert": None,
             "runner_over_expert": 0.96}]
    steps = [{"step": "overhead", "exit_code": 0, "seconds": 60}]
    bars = {name.split(" (")[0]: (verdict, number) for name, verdict, number in overhead_bars(rows, steps)}
    assert bars["Trainer loop >= 0.95x bare Trainer"] == ("NOT MET", "cnn@classic 0.990, resnet@large 0.930")
    assert bars["model cost >= 0.95x expert loop"] == ("MET", "cnn@classic 0.970")
    assert bars["resnet 224² Trainer loop >= 0.95x expert loop"][0] == "MET"


@pytest.mark.integration
def test_a_step_past_the_budget_is_skipped_and_said(tmp_path):
    steps = []
    code = gpu_check.run_step("late", [sys.executable, "-c", "pass"], tmp_path / "late.log", steps,
                              gpu_check.Deadline(0, {}))
    assert code == 124 and steps[0]["exit_code"] == "skipped (budget spent)"
    gpu_check.run_step("slow", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "slow.log", steps,
                       gpu_check.Deadline(1, {}))
    assert steps[1]["exit_code"] == 124  # stopped at the deadline


def test_gpu_checks_bar_wants_every_quick_row_at_its_target(tmp_path):
    from bench.results.io import load_results
    from benchmarks.gpu_check_verdict import target_bar

    rows = [make_row(stop_at_target="on", reached_target="yes"),
            make_row(precision="bf16-mixed", stop_at_target="on", reached_target="no", time_to_target_s="")]
    frame = load_results(write_csv(tmp_path / "results.csv", rows))
    verdict, number = target_bar("targets", frame, 2)[1:]
    assert verdict == "NOT MET" and number.startswith("1 of 2 rows (not: cnn bf16-mixed)")
    frame["reached_target"] = "yes"
    assert target_bar("targets", frame, 2)[1] == "MET"
    frame["stop_at_target"] = "off"  # smoke rows (the reduced CPU form) are not judged
    assert target_bar("targets", frame, 2)[1] == "NOT CHECKED"


@pytest.mark.integration
def test_an_interrupted_gpu_check_writes_the_finished_steps_bundle_and_leaves_nothing_behind(tmp_path, monkeypatch):
    """SIGTERM during a step (as Ctrl-C): that step is stopped, the bundle of the steps before it is written, the
    work folder removed and the exit is 143."""
    import os
    import random
    import signal
    import tempfile
    import threading

    from tests.daemons import daemons_left

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where the work folder is made
    tag = str(random.randrange(10**8, 10**9))

    def two_steps(args, device, plan, work, deadline, done):
        gpu_check.run_step("first", [sys.executable, "-c", "print('first: done')"], work / "first.log", done.steps,
                           deadline)
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
        gpu_check.run_step("second", ["sleep", f"600.{tag}"], work / "second.log", done.steps, deadline)

    monkeypatch.setattr(gpu_check, "run_steps", two_steps)
    out = tmp_path / "bundle"
    assert gpu_check.main([str(out), "--device", "cpu", "--models", "mlp", "--no-pytest"]) == 128 + signal.SIGTERM
    steps = list(csv.DictReader(open(out / "steps.csv")))
    assert [(s["step"], s["exit_code"]) for s in steps] == [("first", "0"), ("second", "interrupted (SIGTERM)")]
    assert steps[0]["summary"] == "first: done"
    assert "| second | interrupted (SIGTERM) |" in (out / "verdict.md").read_text()
    assert not list((tmp_path / "tmp").iterdir())  # no gpu-check-* work folder left
    left = daemons_left(tag)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left
    assert signal.getsignal(signal.SIGTERM) is not gpu_check.interrupt  # the caller's handlers are back
