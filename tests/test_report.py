"""dnnbench report: pivots, failed rows rendered as their status, repeats, plots and an offline page."""

from results_fixtures import make_row, write_csv

from bench.cli import main
from bench.report import write_report
from bench.stats import olympic_mean, summarize


def test_report_writes_tables_plots_and_page(tmp_path):
    rows = [make_row(), make_row(precision="bf16-mixed", train_samples_per_s=1500.0, metric_value=0.975),
            make_row(model="mlp", train_samples_per_s=9000.0),
            make_row(model="mlp", precision="bf16-mixed", status="oom"),
            make_row(model="gan", status="error")]
    csv_path = write_csv(tmp_path / "results.csv", rows)
    art = tmp_path / "artifacts" / "gan-run"
    art.mkdir(parents=True)
    (art / "gan_samples.png").write_bytes(b"\x89PNG")  # the runner saves model artifacts here
    index = write_report([csv_path], tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "| cnn | acc (max) | 0.98 | 0.975 |" in summary
    assert "| mlp | acc (max) | 0.98 | oom |" in summary  # a failed run shows its status, never 0
    assert "| gan | acc (max) | error |" in summary
    assert "1.50x" in summary and "-0.005" in summary  # bf16 speed-up and quality drift vs 32-true
    for name in ("throughput.png", "memory.png", "quality_vs_time.png"):
        assert (tmp_path / name).stat().st_size > 1000
    page = index.read_text()
    assert "<table" in page and "src='throughput.png'" in page and "artifacts/gan-run/gan_samples.png" in page
    assert "http" not in page  # readable offline: no remote assets


def test_repeats_show_median_and_spread_and_olympic_mean():
    assert summarize([3.0, 1.0, 2.0]) == (2.0, 2.0)
    assert olympic_mean([1.0, 2.0, 3.0, 4.0, 100.0]) == 3.0
    assert summarize([1.0, 2.0, 3.0, 4.0, 100.0])[0] == 3.0


def test_report_cell_with_repeats(tmp_path):
    rows = [make_row(repeat=i, train_samples_per_s=v) for i, v in enumerate([900.0, 1000.0, 1100.0])]
    write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path)
    assert "1000 ±1e+02 (n=3)" in (tmp_path / "summary.md").read_text()


def test_secondary_metrics_get_their_own_table(tmp_path):
    rows = [make_row(model="gan", repeat=i, metric_name="fid", metric_direction="min", metric_value=fid,
                     other_metrics=f"fid_untrained=2700 is={score}") for i, (fid, score) in
            enumerate([(90.0, 7.0), (100.0, 8.0), (80.0, 9.0)])]
    rows.append(make_row(model="gan", repeat=3, status="error"))  # a failed repeat adds nothing
    write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path)
    assert "| gan | cpu 32-true | fid_untrained=2700 is=8 |" in (tmp_path / "summary.md").read_text()


def test_report_cli_refuses_bad_files(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
