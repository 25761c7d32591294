"""Stop at the target (MLPerf): quick/standard runs stop at the first validation that reaches the target, full and
`--stop-at-target off` train their epochs; the row says whether, when and where; time-to-train over seeds in the
report and compare."""

import pytest

from bench.cli import main
from bench.core import axes
from bench.core.config import RunConfig
from bench.report.page import write_report
from bench.results.io import flatten
from bench.run.child import run
from bench.run.measure import speed
from tests.helpers import fake_config
from tests.results_fixtures import make_row, write_csv

CLIMBING = "tests.fake_models:ClimbingNet"  # val/acc 0.2, 0.4, 0.6, ... per epoch; target 0.5; 6 epochs a profile
STEPS_PER_EPOCH = 4  # 64 samples, batch 16


def climbing_config(**overrides):
    fields = dict(model=CLIMBING, datamodule="tests.fake_models:ScoredSynthetic", profile="standard", model_args={})
    return fake_config(**(fields | overrides))


def test_standard_stops_at_the_first_validation_that_reaches_the_target(tmp_path):
    row = flatten(run(climbing_config(), tmp_path))
    assert row["status"] == "ok", row["message"]
    assert row["stop_at_target"] == "on" and row["reached_target"] == "yes"
    # reached at the third epoch's validation (0.6 >= 0.5): stopped there, not one step later
    assert row["epochs"] == 3 and row["steps"] == 3 * STEPS_PER_EPOCH
    assert row["metric_value"] == pytest.approx(0.6)  # the test metric of the model where it stopped
    assert row["target_metric_value"] == pytest.approx(0.6)  # the validation value that reached the target
    assert 0 < row["time_to_target_s"]
    assert "--stop-at-target on" in row["reproduce"]


@pytest.mark.parametrize("overrides", [{"profile": "full"}, {"stop_at_target": "off"}])
def test_full_and_stop_off_train_every_epoch(tmp_path, overrides):
    row = flatten(run(climbing_config(**overrides), tmp_path))
    assert row["status"] == "ok", row["message"]
    assert row["stop_at_target"] == "off"
    assert row["epochs"] == 6 and row["steps"] == 6 * STEPS_PER_EPOCH
    assert row["metric_value"] == pytest.approx(1.0)
    assert row["reached_target"] == "yes" and row["time_to_target_s"] > 0  # still recorded, training went on
    assert row["target_metric_value"] == pytest.approx(0.6)  # judged where it first reached, not at the end (1.0)


def test_a_run_past_its_seconds_cap_writes_its_row_and_says_so(tmp_path):
    row = flatten(run(climbing_config(time_limit_s=0.001), tmp_path))  # the cap is half of it: the first step past it
    assert row["status"] == "ok", row["message"]
    assert row["reached_target"] == "no" and row["time_to_target_s"] is None
    assert row["steps"] == 1 and "training stopped at its time cap" in row["message"]


def test_a_quality_fit_long_enough_is_the_speed_window_and_its_own_fit_only_profiles(tmp_path, monkeypatch):
    """The timed steps come from the quality fit's own steps; afterwards a fit of a few steps counts the FLOPs and
    profiles (neither inside the time to target). 100 steps an epoch, six epochs."""
    budgets = []
    carry_on = speed.SpeedWindow.carry_on
    monkeypatch.setattr(speed.SpeedWindow, "carry_on",
                        lambda window, **kw: budgets.append(carry_on(window, **kw)) or budgets[-1])
    data_args = {"shape": (1, 8, 8), "num_classes": 3, "num_samples": 1600}
    row = flatten(run(climbing_config(profile="full", data_args=data_args), tmp_path))
    assert row["status"] == "ok", row["message"]
    assert row["steps"] == 600 and row["timed_steps"] >= speed.TIMED_STEPS
    assert budgets == [1 + speed.REWARM_STEPS + speed.PROFILED_STEPS]  # the counted step, a re-warm-up, the profile
    assert row["device_samples_per_s"] > 0 and row["flops_per_sample"] > 0


def test_a_module_stepping_two_optimizers_a_batch_still_gets_its_profiled_steps(tmp_path):
    """Lightning counts a GAN's two optimizer steps a batch as two: the speed window's own fit still runs the
    profiled steps to the end (the row has device time), and a profile cut short would say so."""
    row = flatten(run(climbing_config(model="tests.fake_models:TwoOptimizerNet", profile="full",
                              data_args={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 1600}), tmp_path))
    assert row["status"] == "ok", row["message"]
    assert row["timed_steps"] >= speed.TIMED_STEPS and row["device_samples_per_s"] > 0
    assert "device time not measured" not in (row["message"] or "")


def test_auto_is_on_in_quick_and_standard_and_off_in_smoke_and_full():
    cells = {profile: RunConfig(model="cnn", datamodule="mnist5k", profile=profile).columns()["stop_at_target"]
             for profile in ("smoke", "quick", "standard", "full")}
    assert cells == {"smoke": "off", "quick": "on", "standard": "on", "full": "off"}
    on_in_full = RunConfig(model="cnn", datamodule="mnist5k", profile="full", stop_at_target="on")
    assert on_in_full.stops_at_target and on_in_full.train_time_cap_s == on_in_full.time_limit_s / 2
    assert RunConfig(model="cnn", datamodule="mnist5k", profile="full").train_time_cap_s is None


def test_the_label_names_the_setting_only_where_it_is_not_the_profiles_own():
    assert axes.stop_label({"profile": "quick", "stop_at_target": "on"}) == ""
    assert axes.stop_label({"profile": "quick", "stop_at_target": "off"}) == "stop-at-target=off"
    assert axes.stop_label({"profile": "full", "stop_at_target": "on"}) == "stop-at-target=on"


def seeds(times, **values):
    """One config's runs over seeds: a time per run, None for a run that did not reach the target."""
    return [make_row(repeat=i, time_to_target_s="" if t is None else t, reached_target="no" if t is None else "yes",
                     **values) for i, t in enumerate(times)]


def test_report_gives_time_to_train_over_seeds_with_the_count_that_reached(tmp_path):
    rows = seeds([50, 10, 30, None, 40]) + seeds([10, 12], model="mlp") + seeds([10, None, None], model="rnn")
    write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "## Time to train over seeds" in summary
    assert "| cnn | cpu 32-true | n=5 | 4 of 5 | 40 | 10 - 50 | olympic mean of 5" in summary
    assert "| mlp | cpu 32-true | n=2 | 2 of 2 | 11 | 10 - 12 | mean of 2" in summary
    assert "| rnn | cpu 32-true | n=3 | 1 of 3 | not reached (2 of 3 runs missed the target) |" in summary


def compare(tmp_path, base_rows, new_rows):
    return main(["compare", str(write_csv(tmp_path / "base.csv", base_rows)),
                 str(write_csv(tmp_path / "new.csv", new_rows))])


def test_compare_fails_on_a_slower_time_to_train(tmp_path):
    assert compare(tmp_path, seeds([30, 31, 32, 33, 34]), seeds([40, 41, 42, 43, 44])) == 1


def test_compare_fails_when_fewer_runs_reach_the_target(tmp_path, capsys):
    assert compare(tmp_path, seeds([30, 31, 32, 33, 34]), seeds([30, 31, None, 33, 34])) == 1
    out = capsys.readouterr().out
    assert "reached target" in out and "5 of 5" in out and "4 of 5" in out and "REGRESSION" in out


def test_compare_passes_seeds_from_the_same_noise(tmp_path, capsys):
    assert compare(tmp_path, seeds([30, 36, 33, 29, 35]), seeds([34, 30, 37, 31, 32])) == 0
    assert "0 regression(s)" in capsys.readouterr().out


def test_an_exact_hit_in_float32_reaches_the_target():
    """470 of 500 right is 0.94 exactly, 0.93999999 once it is a float32 metric: it reaches a 0.94 target."""
    import torch

    from bench.run.measure.quality import meets

    assert meets(float(torch.tensor(470 / 500)), 0.94, "max")
    assert not meets(float(torch.tensor(469 / 500)), 0.94, "max")
    assert meets(float(torch.tensor(0.02)), 0.02, "min") and not meets(0.0201, 0.02, "min")
