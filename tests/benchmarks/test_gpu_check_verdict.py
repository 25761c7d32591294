"""The gpu-check verdict cannot report what was not measured: fed a bundle whose later steps were cut, no bar of a
cut step reads MET and the time bar is not MET; bars judge their own step's rows and name them; energy needs a
nonzero reading over a long enough window; a crashed check is NOT CHECKED. (Made-up rows: tests/results_fixtures.)"""

from __future__ import annotations

import re

import pytest

from benchmarks import gpu_check
from benchmarks.gpu_check_verdict import write_verdict
from tests.results_fixtures import make_row, write_csv

MODELS, PRECISIONS = ["cnn", "mlp"], "32-true,bf16-mixed"
PLAN = {"models": MODELS, "precisions": PRECISIONS, "repeat": "cnn,resnet"}


def gpu_row(model, precision="bf16-mixed", seed=0, **values):
    """An ok cuda row with MFU, energy over a 2 s window (100 steps x 128 / 6400 samples/s) and its target."""
    cells = dict(device="cuda", mfu=0.4, train_joules_per_sample=0.02, infer_joules_per_sample=0.01,
                 timed_steps=100, train_samples_per_s=6400.0, stop_at_target="on", reached_target="yes",
                 size="classic", seed=seed)
    return make_row(model=model, precision=precision, **(cells | values))


def step(name, code, seconds=10.0, summary=""):
    return {"step": name, "command": name, "exit_code": code, "seconds": seconds, "summary": summary}


def verdict_of(tmp_path, steps, csvs, overhead, total_s=300.0) -> dict[str, tuple[str, str]]:
    write_verdict(tmp_path / "verdict.md", "cuda", False, csvs, overhead, steps, PLAN, total_s)
    lines = (tmp_path / "verdict.md").read_text().splitlines()
    bars = [re.match(r"\| (.+?) \| (MET|NOT MET|NOT CHECKED) \| (.*) \|$", line) for line in lines]
    return {m.group(1): (m.group(2), m.group(3)) for m in bars if m}


def test_a_bundle_with_later_steps_cut_has_no_met_for_them(tmp_path):
    repeats = write_csv(tmp_path / "repeats.csv", [gpu_row(m, seed=s) for m in ("cnn", "resnet") for s in (0, 1, 2)])
    large_mlp = write_csv(tmp_path / "large-mlp.csv", [gpu_row("mlp", size="large", mfu=0.6)])
    # the large transformer was stopped at the budget with one finished row; the sweep never started
    large_transformer = write_csv(tmp_path / "large-transformer.csv",
                                  [gpu_row("transformer", size="large", mfu=0.5)])
    steps = [step("dnnbench check", 0, summary="dnnbench check: fit to benchmark (exit 0)"), step("overhead", 0),
             step("repeats", 0), step("large mlp", 0), step("large transformer", 124, 30.0),
             step("pytest -m gpu", "skipped (budget spent)"), step("sweep", "skipped (budget spent)")]
    overhead = [{"model": "cnn", "size": "classic", "status": "ok", "runner_over_bare": 0.99,
                 "device_over_expert": 0.98, "runner_over_expert": 0.97},
                {"model": "resnet", "size": "large", "status": "ok", "runner_over_bare": 0.99,
                 "device_over_expert": 0.99, "runner_over_expert": 0.98}]
    bars = verdict_of(tmp_path, steps, {"repeats": repeats, "large mlp": large_mlp,
                                        "large transformer": large_transformer, "sweep": tmp_path / "absent.csv"},
                      overhead, total_s=340.0)
    cut = {name: value for name, value in bars.items()
           if name.startswith(("large transformer", "pytest", "every", "MFU present", "energy"))}
    assert len(cut) == 6 and all(verdict == "NOT CHECKED" for verdict, _ in cut.values()), cut
    assert "cut at the budget" in cut["large transformer MFU >= 35% in bf16-mixed"][1]
    assert "skipped (budget spent)" in cut["pytest -m gpu (not slow)"][1]
    [time_bar] = [value for name, value in bars.items() if name.startswith("the whole command")]
    assert time_bar[0] == "NOT MET" and "large transformer, pytest -m gpu, sweep" in time_bar[1]
    # the steps that ran are judged, each on its own rows, which the line names
    assert bars["large mlp MFU >= 50% in bf16-mixed"] == ("MET", "60.0% [judged: large bf16-mixed: mlp]")
    assert bars["three repeats of cnn (bf16-mixed) within 3 % of their median"][1].endswith(
        "[judged: classic bf16-mixed: cnn (seeds 0-2)]")
    assert bars["dnnbench check --devices cuda: machine fit to benchmark"][0] == "MET"


def complete_steps(check_summary="dnnbench check: fit to benchmark (exit 0)", check_code=0):
    return [step("dnnbench check", check_code, summary=check_summary), step("overhead", 0), step("repeats", 0),
            step("large mlp", 0), step("large transformer", 0), step("pytest -m gpu", 0), step("sweep", 0)]


def test_energy_needs_a_nonzero_reading_over_a_long_enough_window(tmp_path):
    rows = [gpu_row("cnn", "32-true"),  # 2 s window: judged
            gpu_row("cnn", "bf16-mixed", train_joules_per_sample=0.0),  # read 0: not energy
            gpu_row("mlp", "32-true", train_samples_per_s=25600.0),  # a 0.5 s window...
            gpu_row("mlp", "bf16-mixed", train_samples_per_s=25600.0, energy_to_target_j=40.0)]  # ...or the fit
    sweep = write_csv(tmp_path / "sweep.csv", rows)
    bars = verdict_of(tmp_path, complete_steps(), {"sweep": sweep}, [])
    [energy] = [value for name, value in bars.items() if name.startswith("energy")]
    assert energy[0] == "NOT MET" and "2 of 4 ok rows (not: cnn bf16-mixed, mlp 32-true)" in energy[1]
    assert bars["every cuda row ok in 32-true, bf16-mixed"][0] == "MET"


@pytest.mark.parametrize("code, summary, verdict", [
    (1, "Traceback (most recent call last):", "NOT CHECKED"),  # a crash: no verdict line
    (2, "dnnbench check: unknown device", "NOT CHECKED"),
    (1, "dnnbench check: 1 line(s) make numbers from this machine unreliable (exit 1)", "NOT MET"),
])
def test_the_check_has_its_own_bar(tmp_path, code, summary, verdict):
    bars = verdict_of(tmp_path, complete_steps(summary, code), {}, [])
    assert bars["dnnbench check --devices cuda: machine fit to benchmark"][0] == verdict


def test_a_step_is_cut_before_it_starts_when_its_time_model_does_not_fit(tmp_path):
    steps: list[dict] = []
    deadline = gpu_check.Deadline(50, {"sweep": 105})
    assert gpu_check.run_step("sweep", ["true"], tmp_path / "sweep.log", steps, deadline) == 124
    assert steps[0]["exit_code"].startswith("skipped (budget: the time model needs 105 s")


def test_the_time_model_fits_the_budget_and_names_every_step():
    assert sum(gpu_check.TIME_MODEL_S.values()) <= gpu_check.BUDGET_S["cuda"] <= 360
    for name, seconds in gpu_check.TIME_MODEL_S.items():
        assert re.search(rf"\n  {re.escape(name)} .*\s{seconds}\s", gpu_check.__doc__), name


def test_a_large_row_that_failed_is_not_checked_and_says_why(tmp_path):
    failed = make_row(model="transformer", status="oom", size="large", precision="bf16-mixed", device="cuda")
    large = write_csv(tmp_path / "large-transformer.csv", [failed])
    bars = verdict_of(tmp_path, complete_steps(), {"large transformer": large}, [])
    verdict, number = bars["large transformer MFU >= 35% in bf16-mixed"]
    assert verdict == "NOT CHECKED" and "oom: injected oom" in number and "large bf16-mixed: transformer" in number
