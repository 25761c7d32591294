"""The report page's order and captions: overview first, contents, captioned charts, folded details, provenance
last; a saved image of a model that never reached its target says so."""

from bench.report.page import write_report
from tests.results_fixtures import make_row, write_csv


def test_the_page_reads_overview_contents_charts_details_provenance_and_images_say_how_far_a_model_got(tmp_path):
    rows = [make_row(reached_target="yes"), make_row(precision="bf16-mixed", reached_target="yes"),
            make_row(model="gan", metric_name="fid", metric_direction="min", metric_target=150.0,
                     metric_value=1510.0, reached_target="no", time_to_target_s="")]
    art = tmp_path / "artifacts" / "gan-mnist5k-cpu-32-true-eager-bs128-s0-r0"
    art.mkdir(parents=True)
    (art / "gan_samples.png").write_bytes(b"\x89PNG")
    page = write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path).read_text()
    order = ["<h2 id=overview>", "quality_vs_time.png", "<nav><h2>Contents", "<h2 id=charts>",
             "src='speedup.png'", "<h2 id=details>", "<details id=", "<h2 id=images>", "<h2 id=provenance>"]
    assert [page.index(part) for part in order] == sorted(page.index(part) for part in order)
    assert page.count("<figcaption>") == page.count("<figure>") and "<figcaption>throughput.png" not in page
    assert "gan_samples.png (no gan run reached its target, fid ≤ 150: median 1,510)" in page


def test_a_group_nothing_was_measured_in_is_a_line_and_the_spread_column_is_explained(tmp_path):
    write_report([write_csv(tmp_path / "results.csv", [make_row(), make_row(model="mlp")])], tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    energy = summary.split("### All measurements: energy")[1].split("###")[0]
    assert "not measured in these runs: sm_clock_start_mhz" in energy and "| model |" not in energy
    assert "train samples per s spread (ratio): how steady the run's speed was: (max - min) / median of its" in summary
