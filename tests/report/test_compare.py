"""bench/report/compare.py (`dnnbench compare`): exit codes, per-metric regression direction, noise with repeats,
one-sided configs, the gate's refusals, inference backends and other machines."""

import pytest

from bench.cli import main
from bench.core.columns import COLUMNS
from tests.helpers import one_line_error
from tests.results_fixtures import INFERENCE_CURVE, make_row, sweep_folder_with_curve, write_csv


def compare(tmp_path, base_rows, new_rows, *extra):
    base = write_csv(tmp_path / "base.csv", base_rows)
    new = write_csv(tmp_path / "new.csv", new_rows)
    return main(["compare", str(base), str(new), *extra])


def test_identical_files_exit_0(tmp_path, capsys):
    rows = [make_row(), make_row(precision="bf16-mixed")]
    assert compare(tmp_path, rows, rows) == 0
    assert "0 regression(s)" in capsys.readouterr().out


@pytest.mark.parametrize("column, new_value, regressed", [
    ("train_samples_per_s", 800.0, True),    # slower: higher is better
    ("train_samples_per_s", 1200.0, False),  # faster
    ("peak_rss_mb", 1200.0, True),           # more memory: lower is better
    ("peak_rss_mb", 800.0, False),
    ("latency_p50_ms", 13.0, True),
    ("time_to_target_s", 40.0, True),
    ("metric_value", 0.90, True),            # accuracy down (direction max)
    ("metric_value", 0.99, False),
])
def test_regression_follows_each_metrics_direction(tmp_path, capsys, column, new_value, regressed):
    code = compare(tmp_path, [make_row()], [make_row(**{column: new_value})])
    out = capsys.readouterr().out
    assert code == (1 if regressed else 0)
    assert ("REGRESSION" in out) == regressed


def test_lower_is_better_quality_metrics_regress_upwards(tmp_path):
    base = make_row(model="autoencoder", metric_name="mse", metric_direction="min", metric_value=0.010)
    assert compare(tmp_path, [base], [dict(base, metric_value=0.015)]) == 1
    assert compare(tmp_path, [base], [dict(base, metric_value=0.008)]) == 0


def test_threshold_decides_what_counts(tmp_path):
    base, new = [make_row()], [make_row(peak_rss_mb=1040.0)]  # +4 % memory
    assert compare(tmp_path, base, new) == 0
    assert compare(tmp_path, base, new, "--threshold", "3") == 1


def test_a_run_that_now_fails_is_a_regression(tmp_path, capsys):
    assert compare(tmp_path, [make_row()], [make_row(status="oom")]) == 1
    assert "oom" in capsys.readouterr().out


def test_overlapping_repeats_are_noise_not_regression(tmp_path, capsys):
    base = [make_row(repeat=i, train_samples_per_s=v) for i, v in enumerate([1000, 700, 1300, 900, 1100])]
    new = [make_row(repeat=i, train_samples_per_s=v) for i, v in enumerate([900, 650, 1250, 850, 1000])]
    assert compare(tmp_path, base, new) == 0
    assert "noise" in capsys.readouterr().out


def test_clearly_separated_repeats_are_a_regression(tmp_path):
    base = [make_row(repeat=i, train_samples_per_s=1000 + i) for i in range(5)]
    new = [make_row(repeat=i, train_samples_per_s=800 + i) for i in range(5)]
    assert compare(tmp_path, base, new) == 1


def test_configs_on_one_side_are_listed_not_dropped(tmp_path, capsys):
    base = [make_row(), make_row(model="mlp")]
    new = [make_row(), make_row(model="resnet")]
    assert compare(tmp_path, base, new) == 0
    out = capsys.readouterr().out
    assert "only in base: model=mlp" in out and "only in new: model=resnet" in out


def test_bad_inputs_exit_2_with_a_reason(tmp_path, capsys):
    good = write_csv(tmp_path / "good.csv", [make_row()])
    assert main(["compare", str(tmp_path / "nope.csv"), str(good)]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    assert main(["compare", str(tmp_path / "junk.csv"), str(good)]) == 2
    assert "not a dnnbench results file" in capsys.readouterr().err
    (tmp_path / "empty.csv").write_text("")
    assert main(["compare", str(tmp_path / "empty.csv"), str(good)]) == 2
    assert "not a readable CSV" in capsys.readouterr().err
    future = write_csv(tmp_path / "future.csv", [make_row(schema_version=99)])
    assert main(["compare", str(future), str(good)]) == 2
    assert "unknown schema_version 99" in capsys.readouterr().err
    other = write_csv(tmp_path / "other.csv", [make_row(model="mlp")])
    assert main(["compare", str(other), str(good)]) == 2
    assert "no configs in common" in capsys.readouterr().err


def test_a_schema_version_1_file_still_compares(tmp_path, capsys):
    """Version 2 only added other_metrics: a baseline written by an older dnnbench stays usable in CI gates."""
    old = make_row(schema_version=1, train_samples_per_s=1000.0)
    del old["other_metrics"]
    base = write_csv(tmp_path / "v1.csv", [old], columns=[c for c in old])
    new = write_csv(tmp_path / "v2.csv", [make_row(train_samples_per_s=500.0)])
    assert main(["compare", str(base), str(new)]) == 1  # the halved throughput is found
    assert "train_samples_per_s" in capsys.readouterr().out


def test_three_repeats_thirty_percent_slower_on_every_repeat_is_a_regression(tmp_path, capsys):
    base = [make_row(repeat=i, train_samples_per_s=v) for i, v in enumerate([1000, 1030, 980])]
    new = [make_row(repeat=i, train_samples_per_s=v * 0.7) for i, v in enumerate([1000, 1030, 980])]
    assert compare(tmp_path, base, new) == 1
    assert "REGRESSION" in capsys.readouterr().out


def test_three_repeats_from_the_same_noise_exit_0(tmp_path, capsys):
    import random

    draw = random.Random(0)
    for _ in range(20):  # medians apart beyond the threshold happen; with overlapping ranges they are noise
        base, new = ([make_row(repeat=i, train_samples_per_s=draw.gauss(1000, 60)) for i in range(3)]
                     for _ in range(2))
        samples = [sorted(r["train_samples_per_s"] for r in side) for side in (base, new)]
        if samples[0][0] > samples[1][-1] or samples[1][0] > samples[0][-1]:
            continue  # disjoint draws (1 in 10) are what the gate is meant to catch
        assert compare(tmp_path, base, new) == 0
    base = [make_row(repeat=i, train_samples_per_s=v) for i, v in enumerate([1000, 880, 1120])]
    new = [make_row(repeat=i, train_samples_per_s=v) for i, v in enumerate([940, 1090, 900])]  # median -6 %
    capsys.readouterr()
    assert compare(tmp_path, base, new) == 0
    assert "noise" in capsys.readouterr().out


def test_one_run_per_side_is_judged_by_the_threshold_and_ranges_overlap_at_two(tmp_path):
    assert compare(tmp_path, [make_row(train_samples_per_s=1000)], [make_row(train_samples_per_s=700)]) == 1
    base = [make_row(repeat=i, train_samples_per_s=v) for i, v in enumerate([1000, 1010])]
    assert compare(tmp_path, base, [make_row(repeat=i, train_samples_per_s=v)
                                    for i, v in enumerate([1005, 850])]) == 0  # median -8 %, ranges overlap
    assert compare(tmp_path, base, [make_row(repeat=i, train_samples_per_s=v)
                                    for i, v in enumerate([900, 850])]) == 1


def test_compare_says_which_side_ran_beside_other_load(tmp_path, capsys):
    warning = "shared device: other processes used 1.2 of 2 CPU cores"
    assert compare(tmp_path, [make_row()], [make_row(noise_warning=warning)]) == 0
    captured = capsys.readouterr()
    assert "1 of 1 new row(s) ran beside other load" in captured.err and "noisy" in captured.out
    assert compare(tmp_path, [make_row()], [make_row()]) == 0
    captured = capsys.readouterr()
    assert "other load" not in captured.err and "noisy" not in captured.out


def test_a_schema_3_file_reads_with_the_columns_schema_4_added_empty(tmp_path):
    from bench.results.io import load_results

    old = make_row(schema_version=3)
    added = ("host_overhead_fraction", "latency_samples", "load_per_core_start", "other_cpu_cores_peak")
    for column in added:
        old.pop(column, None)
    frame = load_results(write_csv(tmp_path / "v3.csv", [old], columns=[c for c in old]))
    assert all(column in frame and frame[column].isna().all() for column in added if column in COLUMNS)
    assert compare(tmp_path, [old], [make_row()]) == 0


def test_compare_warns_when_the_files_come_from_different_machines_or_software(tmp_path, capsys):
    base = write_csv(tmp_path / "base.csv", [make_row(hostname="a", torch_version="2.13.0")])
    new = write_csv(tmp_path / "new.csv", [make_row(hostname="b", torch_version="2.14.1")])
    assert main(["compare", str(base), str(new)]) == 0
    err = capsys.readouterr().err
    assert "warning: hostname differs: a vs b" in err and "torch_version differs: 2.13.0 vs 2.14.1" in err
    assert main(["compare", str(base), str(base)]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("threshold", ["-5", "nan", "inf"])
def test_compare_refuses_a_threshold_that_disables_or_inverts_the_gate(tmp_path, capsys, threshold):
    rows = write_csv(tmp_path / "rows.csv", [make_row()])
    assert main(["compare", str(rows), str(rows), "--threshold", threshold]) == 2
    one_line_error(capsys.readouterr().err, "--threshold")


def test_compare_refuses_a_non_numeric_metric_cell_naming_where(tmp_path, capsys):
    base = write_csv(tmp_path / "base.csv", [make_row()])
    new = write_csv(tmp_path / "new.csv", [make_row(), make_row(precision="bf16-mixed", train_samples_per_s="fast")])
    assert main(["compare", str(base), str(new)]) == 2
    one_line_error(capsys.readouterr().err, "new.csv line 3: train_samples_per_s 'fast' is not a finite number")


def test_compare_refuses_an_unknown_status(tmp_path, capsys):
    base = write_csv(tmp_path / "base.csv", [make_row()])
    new = write_csv(tmp_path / "new.csv", [make_row(status="fine")])
    assert main(["compare", str(base), str(new)]) == 2
    one_line_error(capsys.readouterr().err, "unknown status 'fine'")


def test_a_base_of_failed_rows_is_compared_by_status(tmp_path, capsys):
    base = write_csv(tmp_path / "base.csv", [make_row(status="error"),
                                             make_row(precision="bf16-mixed", status="timeout")])
    new = write_csv(tmp_path / "new.csv", [make_row(), make_row(precision="bf16-mixed", status="error")])
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "no configs in common" not in out
    assert "improved" in out and "timeout" in out and "error" in out


def test_compare_exits_1_when_a_backend_slows_down_and_0_when_unchanged(tmp_path, capsys):
    base = sweep_folder_with_curve(tmp_path / "base", INFERENCE_CURVE)
    same = sweep_folder_with_curve(tmp_path / "same", INFERENCE_CURVE)
    slower = sweep_folder_with_curve(tmp_path / "new", [
        p | {"infer_samples_per_s": 500.0} if p["backend"] == "onnxruntime" and p["infer_batch_size"] == 16 else p
        for p in INFERENCE_CURVE])
    assert main(["compare", str(base / "results.csv"), str(same / "results.csv")]) == 0
    assert main(["compare", str(base / "results.csv"), str(slower / "results.csv")]) == 1
    out = capsys.readouterr().out
    assert "onnxruntime infer-bs16" in out and "REGRESSION" in out


@pytest.mark.parametrize("column, new_value", [("train_samples_per_s", 850.0), ("infer_samples_per_s", 4100.0),
                                               ("latency_p50_ms", 11.9), ("time_to_target_s", 35.0)])
def test_one_run_a_side_in_a_timing_metric_is_noise_within_20_percent(tmp_path, capsys, column, new_value):
    """Separate processes of one config differ by 10-20 % on a busy machine: one run against one cannot show less."""
    assert compare(tmp_path, [make_row()], [make_row(**{column: new_value})]) == 0
    out = capsys.readouterr().out
    assert "REGRESSION" not in out and "noise" in out
    assert compare(tmp_path, [make_row()], [make_row(peak_rss_mb=1150.0)]) == 1  # memory is no timing: it stands
    assert compare(tmp_path, [make_row()], [make_row(metric_value=0.9)]) == 1  # nor is quality
    shared = make_row(train_samples_per_s=500.0, noise_warning="shared device: other processes used 1.5 of 2 cores")
    assert compare(tmp_path, [make_row()], [shared]) == 0  # a single run beside other load times the load
    assert compare(tmp_path, [make_row()] * 2, [dict(shared, repeat=i) for i in range(2)]) == 1  # repeats: judged


def test_compare_gates_the_headline_metrics_unless_asked_for_more(tmp_path, capsys):
    """A single noisy run's data_wait_fraction 0.033 -> 0.041 explains a speed; it is no regression by default."""
    other = '{"fid": {"value": 30.0, "better": "min"}}'
    base = [make_row(data_wait_fraction=0.033, device_samples_per_s=1000.0, other_metrics=other)]
    new = [make_row(data_wait_fraction=0.041, device_samples_per_s=500.0,
                    other_metrics='{"fid": {"value": 30.0, "better": "min"}}')]
    assert compare(tmp_path, base, new) == 0
    out = capsys.readouterr().out
    assert "data_wait_fraction" not in out and "device_samples_per_s" not in out and "train_samples_per_s" in out
    assert compare(tmp_path, base, new, "--metrics", "data_wait_fraction") == 1
    out = capsys.readouterr().out
    assert "data_wait_fraction" in out and "train_samples_per_s" not in out and "REGRESSION" in out
    worse_fid = [dict(new[0], other_metrics='{"fid": {"value": 60.0, "better": "min"}}')]
    assert compare(tmp_path, base, worse_fid) == 1  # secondary test metrics are quality: gated by default
    assert compare(tmp_path, base, worse_fid, "--metrics", "fid") == 1
    assert compare(tmp_path, base, worse_fid, "--metrics", "train_samples_per_s") == 0
    assert compare(tmp_path, base, new, "--metrics", "all") == 1
    assert compare(tmp_path, base, new, "--metrics", "nosuch") == 2
    assert "--metrics: unknown metric nosuch" in capsys.readouterr().err


def test_compare_takes_sweep_folders_as_report_does(tmp_path, capsys):
    for name, speed in (("base", 1000.0), ("new", 600.0)):
        (tmp_path / name / "sweep").mkdir(parents=True)
        write_csv(tmp_path / name / "sweep" / "results.csv", [make_row(train_samples_per_s=speed)])
    assert main(["compare", str(tmp_path / "base"), str(tmp_path / "new")]) == 1
    assert main(["compare", str(tmp_path / "base" / "sweep"), str(tmp_path / "base")]) == 0
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty"), str(tmp_path / "base")]) == 2
    assert "no results.csv in this folder" in capsys.readouterr().err

