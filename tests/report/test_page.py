"""bench/report/page.py (`dnnbench report`): pivots, failed rows rendered as their status, repeats, plots, energy and
an offline page; bad output folders."""

from __future__ import annotations

import html
import re
from pathlib import Path

from bench.cli import main
from bench.report.page import write_report
from tests.helpers import one_line_error
from tests.results_fixtures import make_row, write_csv


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
    assert "1.50x" in summary and "0.005 worse" in summary  # bf16 speed-up and quality drift vs 32-true
    for name in ("throughput.png", "memory.png", "quality_vs_time.png"):
        assert (tmp_path / name).stat().st_size > 1000
    page = index.read_text()
    assert "<table" in page and "src='throughput.png'" in page and "artifacts/gan-run/gan_samples.png" in page
    assert "http" not in page  # readable offline: no remote assets


def test_report_cell_with_repeats(tmp_path):
    rows = [make_row(repeat=i, train_samples_per_s=v) for i, v in enumerate([900.0, 1000.0, 1100.0])]
    write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path)
    assert "1,000 ±100 (n=3)" in (tmp_path / "summary.md").read_text()


def test_secondary_metrics_get_their_own_table(tmp_path):
    rows = [make_row(model="gan", repeat=i, metric_name="fid", metric_direction="min", metric_value=fid,
                     other_metrics=f"fid_untrained=2700 is={score}") for i, (fid, score) in
            enumerate([(90.0, 7.0), (100.0, 8.0), (80.0, 9.0)])]
    rows.append(make_row(model="gan", repeat=3, status="error"))  # a failed repeat adds nothing
    write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path)
    assert "| gan | cpu 32-true | fid_untrained=2,700 is=8 |" in (tmp_path / "summary.md").read_text()


def test_report_cli_refuses_bad_files(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


SCIENTIFIC = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?[eE][-+]?\d+")


def environment_cells(**values):
    cells = dict(hostname="benchbox", device_name="Example CPU", cpu_model="Example CPU", cpu_threads=2,
                 torch_version="2.14.1", lightning_version="2.6.6", cuda_version="13.0", git_commit="abc1234",
                 started_at="2026-01-02T03:04:05")
    return cells | values


def test_two_batch_sizes_and_two_precisions_are_four_configs_with_provenance_and_plain_numbers(tmp_path):
    rows = [make_row(batch_size=bs, precision=precision, repeat=repeat, **environment_cells(),
                     train_samples_per_s=14110.3 + 100 * repeat + bs, infer_samples_per_s=123456.7,
                     latency_p50_ms=0.04997, latency_p95_ms=0.05197, params=1234567.0, flops_per_sample=2.5e9,
                     achieved_tflops=0.00001234, peak_tflops=989.0, mfu=0.00000001, peak_rss_mb=1217.0,
                     rss_after_import_mb=910.7)
            for bs in (32, 64) for precision in ("32-true", "bf16-mixed") for repeat in range(2)]
    index = write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path)
    summary, page = (tmp_path / "summary.md").read_text(), index.read_text()
    labels = ["cpu 32-true bs32", "cpu bf16-mixed bs32", "cpu 32-true bs64", "cpu bf16-mixed bs64"]
    assert "| model | metric | " + " | ".join(labels) + " |" in summary  # one column per config, never averaged
    assert "| host | benchbox |" in summary and "| torch | 2.14.1 |" in summary and "| commit | abc1234 |" in summary
    for header in ("latency p50 (ms)", "latency p95 (ms)", "flops per sample (FLOP)",
                   "achieved (TFLOP/s)", "mfu (ratio)", "params"):
        assert header in summary and html.escape(header) in page, header
    assert "2.5 G" in summary and "0.0000123" in summary and "123,000" in summary
    for text in (summary, page):
        found = [float(m) for m in SCIENTIFIC.findall(text)]
        assert not [x for x in found if abs(x) < 1e6], found
    assert "<table" in page and "Provenance" in page and "http" not in page
    for name in ("throughput.png", "inference.png", "latency.png", "memory.png", "mfu.png"):
        assert (tmp_path / name).stat().st_size > 1000, name


def test_repeats_show_spread_single_runs_say_so_and_a_shared_device_is_flagged(tmp_path):
    rows = [make_row(repeat=i, train_samples_per_s=v) for i, v in enumerate([900.0, 1000.0, 1100.0])]
    rows += [make_row(model="mlp", noise_warning="shared device: other processes used 1.5 of 2 CPU cores")]
    index = write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "| cnn | cpu 32-true | n=3 | 1,000 ±100 |" in summary  # speed table: spread beside the value
    assert "| mlp | cpu 32-true | single run ⚠ shared device | 1,000 ⚠ |" in summary
    assert "| mlp | acc (max) | 0.98 |" in summary  # quality does not depend on the machine's load: no mark
    assert "1 of 4 runs shared their device" in summary and "other processes used 1.5" in summary
    assert "class=badge" in index.read_text()


def test_smoke_profile_says_what_it_does_not_aim_at_and_quick_what_it_stops_at(tmp_path):
    rows = [make_row(time_to_target_s="", profile="smoke"), make_row(model="mlp", time_to_target_s="", profile="smoke")]
    write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "Profile smoke" in summary and "not expected to reach" in summary
    assert "No run reached its target (not expected in this profile" in summary
    write_report([write_csv(tmp_path / "results.csv", [make_row(time_to_target_s="")])], tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "Profile quick" in summary and "until it reaches its target or a small cap" in summary
    assert "No run reached its target (train longer (--profile standard)" in summary


def test_report_of_a_folder_of_sweeps_elsewhere_copies_the_images_it_links(tmp_path):
    for name, model in (("sweep-a", "cnn"), ("sweep-b", "gan")):
        art = tmp_path / "runs" / name / "artifacts" / f"{model}-run"
        art.mkdir(parents=True)
        write_csv(tmp_path / "runs" / name / "results.csv", [make_row(model=model)])
        (art / "samples.png").write_bytes(b"\x89PNG")
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "runs"), "--out", str(out)]) == 0
    summary, page = (out / "summary.md").read_text(), (out / "index.html").read_text()
    assert "2 runs of 2 configs" in summary and "| cnn |" in summary and "| gan |" in summary
    copied = sorted(p.relative_to(out).as_posix() for p in (out / "artifacts").rglob("*.png"))
    assert copied == ["artifacts/0-sweep-a/cnn-run/samples.png", "artifacts/1-sweep-b/gan-run/samples.png"]
    assert all(f"src='{path}'" in page for path in copied)


def test_report_of_an_empty_folder_is_bad_input(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no results.csv" in capsys.readouterr().err


def test_report_to_an_unusable_folder_is_one_line(tmp_path, capsys):
    results = write_csv(tmp_path / "results.csv", [make_row()])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in (blocker, Path("/proc/dnnbench-report")):
        assert main(["report", str(results), "--out", str(out)]) == 2
        one_line_error(capsys.readouterr().err, str(out))


def test_links_planted_in_the_output_are_replaced_never_written_through(tmp_path, capsys):
    """A report or history page, chart or copied image whose name holds a link: the link is replaced (the file it
    pointed at keeps its bytes) and the new file is readable by others, as an ordinary page is; a folder others can
    write is refused in one line (they could plant such links, or swap the page after it is written)."""
    for name, model in (("sweep-a", "cnn"), ("sweep-b", "gan")):
        art = tmp_path / "runs" / name / "artifacts" / f"{model}-run"
        art.mkdir(parents=True)
        write_csv(tmp_path / "runs" / name / "results.csv", [make_row(model=model, git_commit="abc1234")])
        (art / "samples.png").write_bytes(b"\x89PNG")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    for command, out, planted in (("report", "report", ["index.html", "summary.md", "throughput.png",
                                                        "artifacts/0-sweep-a/cnn-run/samples.png"]),
                                  ("history", "history", ["index.html"])):
        for name in planted:
            (tmp_path / out / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / out / name).symlink_to(victim)
        assert main([command, str(tmp_path / "runs"), "--out", str(tmp_path / out)]) == 0, capsys.readouterr()
        assert victim.read_text() == "precious"
        assert not any((tmp_path / out / name).is_symlink() for name in planted)
        assert (tmp_path / out / "index.html").stat().st_mode & 0o777 == 0o644
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    for command in ("report", "history"):
        assert main([command, str(tmp_path / "runs"), "--out", str(shared)]) == 2
        one_line_error(capsys.readouterr().err, "writable by other users")
    assert list(shared.iterdir()) == []


def test_report_shows_two_batch_sizes_as_two_configs(tmp_path):
    rows = [make_row(batch_size=32, train_samples_per_s=900.0), make_row(batch_size=256, train_samples_per_s=300.0)]
    write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "cpu 32-true bs32" in summary and "cpu 32-true bs256" in summary
    assert "n=2" not in summary  # never averaged as if they were repeats


def test_report_has_an_energy_table_and_chart_and_compare_gates_energy(tmp_path, capsys):
    from bench.cli import main
    from bench.report.page import write_report
    from tests.results_fixtures import make_row, write_csv

    energy_cells = dict(device="cuda", train_joules_per_sample=0.5, infer_joules_per_sample=0.1,
                        energy_to_target_j=900.0, power_mean_w=350.0, sm_clock_min_mhz=1755, energy_source="nvml")
    base = write_csv(tmp_path / "base.csv", [make_row(**energy_cells)])
    write_report([base], tmp_path / "report")
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "All measurements: energy" in summary and "train joules per sample (J)" in summary
    assert (tmp_path / "report" / "energy.png").exists()
    worse = write_csv(tmp_path / "new.csv", [make_row(**energy_cells | {"train_joules_per_sample": 0.8})])
    assert main(["compare", str(base), str(worse)]) == 0  # energy is no headline metric: gated when asked for
    assert main(["compare", str(base), str(worse), "--metrics", "all"]) == 1  # more energy per sample: a regression
    assert "train_joules_per_sample" in capsys.readouterr().out
