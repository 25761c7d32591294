"""bench/report/inference.py: the backend table and the latency-throughput chart of inference.csv."""

from bench.report.page import write_report
from tests.results_fixtures import INFERENCE_CURVE, sweep_folder_with_curve


def test_report_has_the_backend_table_and_the_latency_throughput_chart(tmp_path):
    folder = sweep_folder_with_curve(tmp_path / "s", INFERENCE_CURVE)
    write_report([folder], folder)
    summary = (folder / "summary.md").read_text()
    assert "## Inference backends" in summary and "no Linear/LSTM/GRU layer" in summary
    assert (folder / "inference_curves.png").stat().st_size > 0
    assert "inference_curves.png" in (folder / "index.html").read_text()
