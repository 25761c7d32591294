"""`dnnbench report RESULTS.csv|SWEEP_DIR... [--out DIR]`: summary.md, PNG charts and an offline index.html (step:
results files -> the report).

A folder stands for every results.csv in or below it (one sweep, or a folder of sweeps). The first screen answers
"which model, which precision, for what": one row per model and config with the target reached or missed (judged
on validation) beside the test quality, time to target, train and inference samples/s, speed-up over 32-true and
memory, the best config of each model marked; and a quality-vs-time chart. Then a table of contents, the charts,
the detail tables folded (every measured column, speed-ups, runs that shared their device, failures; inference
backends where an inference.csv sits beside a results file; the precision over processes where a config ran 2
or more: bench/report/precision.py), the images the runs saved, and where and with what
the rows were measured.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.core.errors import ResultsError
from bench.core.private_files import private_folder
from bench.report import inference as report_inference
from bench.report import plots, precision
from bench.report.render import Page, artifact_images, write_html, write_markdown
from bench.report.sections import (
    detail_sections,
    noise_note,
    overview_section,
    profile_notes,
    provenance_section,
    run_summary,
)
from bench.report.tables import prepare
from bench.results.files import results_files

NAME, HELP = "report", "render summary.md, plots and index.html from results CSVs or sweep folders"


def write_report(paths: list[Path], out_dir: Path) -> Path:
    """Write summary.md, plots and index.html for results CSVs / sweep folders; returns the index.html path."""
    out_dir = Path(out_dir)
    csv_paths = results_files(paths)
    frame = prepare(csv_paths)
    private_folder(out_dir, "report folder")  # the files in it are replaced, never written through a link
    inference = report_inference.inference_frame(csv_paths)  # the inference.csv beside each results file
    curves = report_inference.curve_chart(inference, out_dir)
    page = Page(title="dnnbench report: " + ", ".join(dict.fromkeys(Path(s).name for s in frame["source"])),
                summary=run_summary(frame), overview=overview_section(frame),
                notes=[*profile_notes(frame), *filter(None, [noise_note(frame)])],
                charts=plots.write_plots(frame, out_dir) + ([curves] if curves else []),
                details=[*detail_sections(frame), *precision.sections(frame, csv_paths),
                         *report_inference.sections(inference)],
                images=artifact_images(frame, out_dir), provenance=provenance_section(frame, csv_paths))
    write_markdown(out_dir / "summary.md", page)
    write_html(out_dir / "index.html", page)
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
