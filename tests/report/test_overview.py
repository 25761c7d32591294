"""The report's overview: one row per model and config with the target ✓/✗ (judged on validation), the test
quality beside it, the speed-up over 32-true and the best config of each model marked."""

from bench.report.overview import overview_table
from bench.report.tables import prepare
from tests.results_fixtures import make_row, write_csv


def overview_of(tmp_path, rows):
    return overview_table(prepare([write_csv(tmp_path / "results.csv", rows)])).set_index(["model", "config"])


def test_target_marks_test_quality_speed_up_and_the_best_config(tmp_path):
    rows = [make_row(reached_target="yes", time_to_target_s=30.0),
            make_row(precision="bf16-mixed", reached_target="yes", time_to_target_s=20.0,
                     train_samples_per_s=1500.0, metric_value=0.92),  # reached on validation, below on test
            make_row(model="mlp", reached_target="no", time_to_target_s="", metric_value=0.9),
            make_row(model="mlp", precision="bf16-mixed", status="oom")]
    table = overview_of(tmp_path, rows)
    assert list(table.index) == [("cnn", "cpu 32-true"), ("cnn", "★ cpu bf16-mixed"), ("mlp", "★ cpu 32-true"),
                                 ("mlp", "cpu bf16-mixed")]
    best = table.loc[("cnn", "★ cpu bf16-mixed")]  # reached its target soonest
    assert best["target (validation)"] == "✓ acc ≥ 0.97" and best["test quality"] == "acc 0.92"
    assert best["speed-up vs 32-true"] == "1.50x" and best["train (samples/s)"] == "1,500"
    assert table.loc[("cnn", "cpu 32-true"), "speed-up vs 32-true"] == "baseline"
    assert table.loc[("mlp", "★ cpu 32-true"), "target (validation)"] == "✗ acc ≥ 0.97"
    assert table.loc[("mlp", "cpu bf16-mixed"), "target (validation)"] == "✗ oom"


def test_repeats_that_disagree_on_the_target_are_counted_and_min_metrics_read_at_most(tmp_path):
    rows = [make_row(model="autoencoder", repeat=i, metric_name="mse", metric_direction="min", metric_target=0.02,
                     metric_value=0.0186, reached_target=hit) for i, hit in enumerate(["yes", "no", "yes"])]
    table = overview_of(tmp_path, rows)
    assert table.loc[("autoencoder", "cpu 32-true"), "target (validation)"] == "✗ mse ≤ 0.02 (2 of 3)"


def test_the_target_cell_names_the_validation_value_it_was_judged_on(tmp_path):
    """A row reached on validation (0.971) with a test value below the target (0.92) shows both, each named."""
    rows = [make_row(reached_target="yes", target_metric_value=0.971, metric_value=0.92)]
    cell = overview_of(tmp_path, rows).loc[("cnn", "cpu 32-true")]
    assert cell["target (validation)"] == "✓ acc ≥ 0.97 (val 0.971)" and cell["test quality"] == "acc 0.92"
