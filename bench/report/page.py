"""`dnnbench report RESULTS.csv|SWEEP_DIR... [--out DIR]`: summary.md, PNG plots and an offline index.html (step:
rows read through the one reader -> tables and plots).

A folder stands for every results.csv in or below it (one sweep, or a folder of sweeps). The report opens with
where and with what the rows were measured and what their profile does not aim at; then headline tables (model x
config), every measured column grouped as bench/core/columns.py groups them (units in the headers, the spread of
repeats beside each value, a "single run" mark where there is none), speed-ups against 32-true eager, the runs
that shared their device, failures, plots, and the sample grids / attention maps the runs saved; where an
inference.csv sits beside a results file, its backend table and latency-throughput chart (bench/report/inference.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.core.errors import ResultsError
from bench.report import inference as report_inference
from bench.report import plots
from bench.report.render import artifact_images, write_html, write_markdown
from bench.report.sections import noise_note, profile_notes, sections_of
from bench.report.tables import prepare, results_files

NAME, HELP = "report", "render summary.md, plots and index.html from results CSVs or sweep folders"


def write_report(paths: list[Path], out_dir: Path) -> Path:
    """Write summary.md, plots and index.html for results CSVs / sweep folders; returns the index.html path."""
    out_dir = Path(out_dir)
    csv_paths = results_files(paths)
    frame = prepare(csv_paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    inference = report_inference.inference_frame(csv_paths)  # the inference.csv beside each results file
    sections = sections_of(frame, csv_paths) + report_inference.sections(inference)
    notes = [*profile_notes(frame), *filter(None, [noise_note(frame)])]
    curves = report_inference.curve_chart(inference, out_dir)
    images = {"Plots": plots.write_plots(frame, out_dir) + ([curves] if curves else []),
              "Sample grids and attention maps (by run)": artifact_images(frame, out_dir)}
    title = "dnnbench report: " + ", ".join(dict.fromkeys(Path(s).name for s in frame["source"]))
    write_markdown(out_dir / "summary.md", title, notes, sections, images)
    write_html(out_dir / "index.html", title, notes, sections, images)
    return out_dir / "index.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", help="results CSVs written by dnnbench run, or folders: every "
                        "results.csv in or below them (a sweep, a folder of sweeps)")
    parser.add_argument("--out", default=None, help="folder for the report; images the runs saved are copied there "
                        "(default: the first folder given, or the first CSV's folder)")


def main(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.results]
    out = Path(args.out) if args.out else paths[0] if paths[0].is_dir() else paths[0].parent
    if out.exists() and not out.is_dir():
        raise ResultsError(f"report folder {out} is a file")
    try:
        index = write_report(paths, out)
    except OSError as exc:
        raise ResultsError(f"report not written to {out} ({exc.strerror or exc})") from None
    print(f"dnnbench report: {index}")
    return 0
