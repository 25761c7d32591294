"""`dnnbench report RESULTS.csv|SWEEP_DIR... [--out DIR]`: summary.md, PNG plots and an offline index.html (step:
rows read through the one reader -> tables and plots).

A folder stands for every results.csv in or below it (one sweep, or a folder of sweeps). The report opens with
where and with what the rows were measured and what their profile does not aim at; then headline tables (model x
config), every measured column grouped as bench/columns.py groups them (units in the headers, the spread of
repeats beside each value, a "single run" mark where there is none), speed-ups against 32-true eager, the runs
that shared their device, failures, plots, and the sample grids / attention maps the runs saved.
"""

from __future__ import annotations

import argparse
import html
import shutil
import statistics
from pathlib import Path

import pandas as pd

from bench import config as cfg
from bench import plots
from bench.columns import BY_NAME, COLUMNS, NUMERIC, heading, number, of_group
from bench.environment import provenance
from bench.results_io import ResultsError, load_results
from bench.stats import summarize

NAME, HELP = "report", "render summary.md, plots and index.html from results CSVs or sweep folders"

NOISE_MARK = "⚠"
SHORT = {"config_label": "config"}
# What another process on the device can change (quality is fixed by the seed, memory by the model).
NOISE_SENSITIVE = ({*of_group("speed"), *of_group("latency"), "time_to_target_s", "achieved_tflops", "mfu", "wall_s"}
                   - {"timed_steps"})
GROUPS = ("quality", "speed", "latency", "memory", "cost")  # the measured groups, each its own table
DERIVED = {"cpu_mem_above_import_mb": ("memory", "MiB")}  # computed here from two columns (see `prepare`)
HIDDEN = {"metric_target"}  # shown in the quality table's metric cell instead
HEADLINES = [  # (title, column, note): one model x config pivot each
    ("Quality (test metric)", "metric_value", "each model's own metric; (max) higher is better, (min) lower"),
    ("Train throughput (samples/s)", "train_samples_per_s", "higher is better"),
    ("Inference throughput (samples/s)", "infer_samples_per_s", "higher is better"),
    ("Inference latency p50 (ms)", "latency_p50_ms", "at the run's batch size; lower is better"),
    ("Peak memory (MiB)", None, "GPU max allocated where measured, else peak RSS of the run; lower is better"),
    ("Time to target (s)", "time_to_target_s", "empty: target not reached; lower is better"),
]
NOT_AIMING = {
    "smoke": "smoke runs a few steps per model to check that everything works: quality and time-to-target are "
             "not expected to reach the targets, and speed comes from a handful of steps. Not a benchmark result.",
    "quick": "quick trains each model for 1-3 epochs: quality and time-to-target are not expected to reach the "
             "models' targets (--profile standard trains to them). Speed, latency, memory and cost are measured "
             "as in every profile.",
}


# ----------------------------------------------------------------------------------------------- reading
def results_files(paths: list[Path]) -> list[Path]:
    """The CSVs named, and every results.csv in or below each folder named."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(path.rglob("results.csv"))
            if not inside:
                raise ResultsError(f"{path}: no results.csv in this folder or below it")
            found += inside
        else:
            found.append(path)  # load_results names a missing file
    return list(dict.fromkeys(found))


def prepare(csv_paths: list[Path]) -> pd.DataFrame:
    """All rows of all files through the one reader, with their source folder, labels and derived columns."""
    frames = []
    for path in csv_paths:
        frame = load_results(path)
        frame["source"] = str(Path(path).parent)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    for column in COLUMNS:  # older schema versions lack some: empty, never zero
        if column not in frame:
            frame[column] = float("nan") if column in NUMERIC else ""
    frame["config_label"] = varying_axes_labels(frame)
    frame["cpu_mem_above_import_mb"] = frame["peak_rss_mb"] - frame["rss_after_import_mb"]
    frame["noisy"] = frame["noise_warning"].fillna("").astype(str).str.len() > 0
    return frame


def varying_axes_labels(frame: pd.DataFrame) -> pd.Series:
    """Pivot headings from the config identity: device and precision always, other axes where a model varies them.

    Two batch sizes of one model are two columns, never repeats of one (the identity tells them apart).
    """
    always = ("device", "precision", "compile")
    constant = tuple(axis for axis in cfg.IDENTITY if axis not in always
                     and frame.groupby("model")[axis].nunique().max() <= 1)
    rows = frame.to_dict("records")
    return pd.Series([cfg.label(row, leave_out=("model", *constant)) for row in rows], index=frame.index)


# ----------------------------------------------------------------------------------------------- tables
def cell_text(values: list[float], status: str, noisy: bool, count: bool) -> str:
    """One table cell: the centre of the ok repeats ± half their range (with n when `count`), else the failure
    status (empty when not `count`: the row's `runs` cell says it); ⚠ when a run shared its device."""
    if status != "ok" and not values:
        return status if count else ""
    if not values:
        return ""
    centre, spread = summarize(values)
    text = number(centre)
    if spread:  # identical repeats (a parameter count) show no ±0
        text += f" ±{number(spread / 2)}" + (f" (n={len(values)})" if count else "")
    return text + (f" {NOISE_MARK}" if noisy else "")


def cells(frame: pd.DataFrame, columns: list[str], count: bool = True) -> dict[tuple[str, str], dict[str, str]]:
    """Every cell of a table at once: {(model, config label): {column: text}}; the failure status stands in for
    the values of a config with no ok run."""
    keys = ["model", "config_label"]
    statuses = frame.groupby(keys, sort=False)["status"].agg(lambda s: "/".join(sorted(set(s))))
    ok = frame.loc[frame["status"] == "ok", [*keys, "noisy", *columns]]  # narrow: grouping a wide frame is slow
    ok_groups = dict(list(ok.groupby(keys, sort=False)))
    table = {}
    for key, status in statuses.items():
        rows = ok_groups.get(key)
        if rows is None:
            table[key] = {column: cell_text([], status, False, count) for column in columns}
            continue
        noisy = bool(rows["noisy"].any())
        table[key] = {column: cell_text(rows[column].dropna().tolist(), "ok", noisy and column in NOISE_SENSITIVE,
                                        count) for column in columns}
    return table


def memory_column(frame: pd.DataFrame) -> str:
    gpu = frame.get("peak_gpu_mem_allocated_mb")
    return "peak_gpu_mem_allocated_mb" if gpu is not None and gpu.notna().any() else "peak_rss_mb"


def pivot(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Model rows x config columns."""
    labels = list(dict.fromkeys(frame["config_label"]))
    table: dict[str, dict[str, str]] = {}
    for (model, label), texts in cells(frame, [column]).items():
        table.setdefault(model, {})[label] = texts[column]
    result = pd.DataFrame.from_dict(table, orient="index").sort_index().reindex(columns=labels).fillna("")
    if column == "metric_value":
        metric = frame.groupby("model")["metric_name"].first() + " (" + \
            frame.groupby("model")["metric_direction"].first() + ")"
        result.insert(0, "metric", metric)
    result.index.name = "model"
    return result


def runs_text(rows: pd.DataFrame) -> str:
    """How many runs a table row stands on: `single run`, `n=3`, or the statuses when some failed."""
    counts = rows["status"].value_counts()
    text = "single run" if len(rows) == 1 and counts.get("ok") == 1 else \
        f"n={len(rows)}" if counts.get("ok") == len(rows) else ", ".join(f"{n} {s}" for s, n in counts.items())
    return text + (f" {NOISE_MARK} shared device" if rows["noisy"].any() else "")


def group_columns(frame: pd.DataFrame, group: str) -> tuple[list[str], list[str]]:
    """(measured, never measured) numeric columns of one group, derived ones included."""
    columns = [c for c in of_group(group) if BY_NAME[c].numeric and c not in HIDDEN]
    columns += [c for c, (g, _) in DERIVED.items() if g == group]
    ok = frame[frame["status"] == "ok"]
    measured = [c for c in columns if ok[c].notna().any()]
    return measured, [c for c in columns if c not in measured]


def header(column: str) -> str:
    return f"{column} ({DERIVED[column][1]})" if column in DERIVED else heading(column)


def config_rows(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, str]]:
    """The leading cells of every per-config table: model, config, runs (and the metric, for the quality table),
    models sorted, configs in the order the sweep ran them."""
    narrow = frame[["model", "config_label", "status", "noisy", "metric_name", "metric_direction", "metric_target"]]
    leading = {}
    for (model, label), rows in sorted(narrow.groupby(["model", "config_label"], sort=False), key=lambda g: g[0][0]):
        first = rows.iloc[0]
        target = f", target {number(first['metric_target'])}" if pd.notna(first["metric_target"]) else ""
        leading[(model, label)] = {"model": model, "config": label, "runs": runs_text(rows),
                                   "metric": f"{first['metric_name']} ({first['metric_direction']}{target})"}
    return leading


def group_table(frame: pd.DataFrame, group: str, leading: dict[tuple[str, str], dict[str, str]]
                ) -> tuple[pd.DataFrame, list[str]]:
    """One row per config: every measured column of the group (units in headers); and the group's empty columns."""
    measured, empty = group_columns(frame, group)
    texts = cells(frame, measured, count=False)
    records = []
    for key, first_cells in leading.items():
        record = first_cells if group == "quality" else {k: v for k, v in first_cells.items() if k != "metric"}
        records.append(record | {header(column): texts[key][column] for column in measured})
    return pd.DataFrame(records), empty


def speedup(variant: pd.DataFrame, base: pd.DataFrame, column: str) -> str:
    """Median ratio, with the range of ratios when both sides have repeats, or a single-run mark."""
    new, old = variant[column].dropna(), base[column].dropna()
    if new.empty or old.empty or not old.median():
        return ""
    ratio = new.median() / old.median()
    text = f"{ratio:.2f}x" if ratio >= 0.01 else f"{number(ratio)}x"
    if len(new) > 1 and len(old) > 1:
        text += f" (range {new.min() / old.max():.2f}-{new.max() / old.min():.2f})"
    else:
        text += " (single run)"
    return text + (f" {NOISE_MARK}" if variant["noisy"].any() or base["noisy"].any() else "")


def relative_to_baseline(frame: pd.DataFrame) -> pd.DataFrame:
    """Speed-up (train samples/s ratio) and quality drift of each precision / compile vs 32-true eager."""
    ok = frame[frame["status"] == "ok"]
    rows = []
    # The baseline of a variant is the same config in 32-true eager: every other identity axis held equal.
    held = [axis for axis in cfg.IDENTITY if axis not in ("precision", "compile")]
    for key, group in ok.groupby(held, sort=True):
        base = group[(group["precision"] == "32-true") & (group["compile"] == "off")]
        if base.empty:
            continue
        base_quality = base["metric_value"].median()
        for label, variant in group.groupby("config_label", sort=False):
            if variant.index.isin(base.index).all():
                continue
            drift = variant["metric_value"].median() - base_quality
            rows.append({"model": key[0], "variant": label,
                         "train speed-up": speedup(variant, base, "train_samples_per_s"),
                         "infer speed-up": speedup(variant, base, "infer_samples_per_s"),
                         "quality drift": number(drift, signed=True) if pd.notna(drift) else ""})
    return pd.DataFrame(rows)


def other_metrics_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per model and config, the median of each secondary test metric (IS beside FID, PSNR/SSIM beside MSE)."""
    rows = []
    ok = frame[frame["status"] == "ok"]
    for (model, label), group in ok.groupby(["model", "config_label"], sort=True):
        values: dict[str, list[float]] = {}
        for metrics in group["other_metrics"]:
            for name, entry in metrics.items():
                values.setdefault(name, []).append(float(entry["value"]))
        if values:
            medians = " ".join(f"{name}={number(statistics.median(v))}" for name, v in values.items())
            rows.append({"model": model, "config": label, "median of repeats": medians})
    return pd.DataFrame(rows)


def provenance_table(frame: pd.DataFrame, csv_paths: list[Path]) -> pd.DataFrame:
    """Where, when and with what the rows were measured; mixed values are all listed and marked."""
    facts = {"results": [str(p) for p in csv_paths]} | provenance(frame)
    rows = []
    for fact, values in facts.items():
        mixed = len(values) > 1 and fact not in ("results", "date")
        text = "; ".join(values) + (f" {NOISE_MARK} mixed: compare with care" if mixed else "") if values \
            else "none recorded"
        rows.append({"fact": fact, "value": text})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------- sections
Section = tuple[str, str, "pd.DataFrame | None"]  # (title, note, table)


def profile_notes(frame: pd.DataFrame) -> list[str]:
    return [f"Profile {p}: {NOT_AIMING[p]}" for p in dict.fromkeys(frame["profile"]) if p in NOT_AIMING]


def noise_note(frame: pd.DataFrame) -> str:
    noisy = int(frame["noisy"].sum())
    if not noisy:
        return ""
    return (f"{NOISE_MARK} {noisy} of {len(frame)} runs shared their device with other work (busy processes or "
            f"other GPU processes while they ran): their speed, latency and time numbers may be off. They are "
            f"marked {NOISE_MARK}; see 'Runs that shared their device'.")


def headline_sections(frame: pd.DataFrame) -> list[Section]:
    sections = []
    not_aiming = " ".join(profile_notes(frame))
    for title, column, note in HEADLINES:
        column = column or memory_column(frame)
        table = pivot(frame, column)
        if column == "time_to_target_s" and not frame[column].notna().any():
            why = "not expected in this profile: see the note at the top" if not_aiming else \
                "train longer (--profile standard, full) or check the targets"
            sections.append((title, f"No run reached its target ({why}).", None))
            continue
        note += "; values without ± are single runs (or identical repeats)"
        if column == "metric_value" and not_aiming:
            note += ". Not trained to the targets in this profile: see the note at the top"
        sections.append((title, note, table))
    return sections


def group_sections(frame: pd.DataFrame) -> list[Section]:
    sections = []
    leading = config_rows(frame)
    for group in GROUPS:
        table, empty = group_table(frame, group, leading)
        note = "median of the ok repeats ± half their range; `runs` says how many"
        if empty:
            note += "; not measured in these runs: " + ", ".join(empty)
            if "mfu" in empty:
                note += " (MFU needs the device's peak: known for current GPUs, --peak-tflops elsewhere)"
        sections.append((f"All measurements: {group}", note, table))
    return sections


def sections_of(frame: pd.DataFrame, csv_paths: list[Path]) -> list[Section]:
    counts = frame["status"].value_counts()
    configs = frame.groupby(["model", "config_label"]).ngroups
    sections: list[Section] = [
        ("Provenance", "where, when and with what these rows were measured", provenance_table(frame, csv_paths)),
        ("Runs", f"{len(frame)} runs of {configs} configs: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
         None),
        *headline_sections(frame)]
    relative = relative_to_baseline(frame)
    if not relative.empty:
        sections.append(("Against 32-true eager", "train/inference speed-up (ratio of medians; range over repeats "
                         "where both sides have them) and quality drift", relative))
    sections += group_sections(frame)
    others = other_metrics_table(frame)
    if not others.empty:
        sections.append(("Other test metrics", "each model's secondary metrics as name=value", others))
    noisy = frame[frame["noisy"]]
    if not noisy.empty:
        sections.append(("Runs that shared their device", "what else used the machine while they ran",
                         noisy[["model", "config_label", "repeat", "noise_warning"]].rename(columns=SHORT)))
    failed = frame[frame["status"] != "ok"]
    if not failed.empty:
        sections.append(("Failed runs", "status and reason",
                         failed[["model", "config_label", "status", "message"]].rename(columns=SHORT)))
    return sections


# ----------------------------------------------------------------------------------------------- output
def artifact_images(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The sample grids / attention maps the runs saved, copied under out_dir when their sweep lies elsewhere."""
    sources = list(dict.fromkeys(Path(s) for s in frame["source"]))
    images = []
    for index, source in enumerate(sources):
        found = sorted((source / "artifacts").glob("*/*.png"))
        if source.resolve() == out_dir.resolve():
            images += found
            continue
        prefix = Path("artifacts") if len(sources) == 1 else Path("artifacts") / f"{index}-{source.name}"
        for image in found:
            target = out_dir / prefix / image.parent.name / image.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(image, target)
            images.append(target)
    return images


def markdown_table(table: pd.DataFrame, index: bool = True) -> str:
    frame = table.reset_index() if index else table
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def as_flat(table: pd.DataFrame) -> pd.DataFrame:
    """A pivot's index becomes its first column: one header row, no index-name row."""
    return table.reset_index() if table.index.name else table.reset_index(drop=True)


def html_table(table: pd.DataFrame, number_: int) -> str:
    """A table through pandas' Styler: escaped, no index column; numbers right-aligned, text left-aligned."""
    flat = as_flat(table).fillna("").astype(str)
    styler = flat.style.hide(axis="index").format(escape="html").set_uuid(f"t{number_}")
    left = {column: [{"selector": "td", "props": "text-align: left"}] for column in flat.columns
            if not mostly_numbers(flat[column])}
    return styler.set_table_styles(left, overwrite=False).set_table_attributes('class="results"').to_html()


def mostly_numbers(cells: pd.Series) -> bool:
    """Whether most non-empty cells of a column start with a number (those columns are right-aligned)."""
    filled = [cell for cell in cells if cell]
    return bool(filled) and sum(cell[0] in "+-0123456789" for cell in filled) >= len(filled) / 2


def write_markdown(path: Path, title: str, notes: list[str], sections: list[Section],
                   images: dict[str, list[Path]]) -> None:
    lines = [f"# {title}", "", *[f"> {note}\n" for note in notes]]
    for section_title, note, table in sections:
        lines += [f"## {section_title}", "", note or "", ""]
        if table is not None:
            lines += [markdown_table(as_flat(table), index=False), ""]
    for heading_, paths in images.items():
        if paths:
            lines += [f"## {heading_}", ""]
            lines += [f"![{image.stem}]({image.relative_to(path.parent).as_posix()})" for image in paths]
            lines.append("")
    path.write_text("\n".join(lines))


STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1500px}"
         "table.results{border-collapse:collapse;font-size:13px;margin-bottom:1em}"
         "table.results td,table.results th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}"
         "table.results th{background:#f0f0f0;text-align:center}.note{color:#555;max-width:1100px}"
         ".badge{background:#fff3cd;border:1px solid #e0b400;padding:.5em 1em;max-width:1100px}"
         "img{max-width:1450px}figure{margin:1em 1em 1em 0;display:inline-table;vertical-align:top}"
         "figcaption{display:table-caption;caption-side:bottom;font-size:12px;color:#555;overflow-wrap:anywhere}")


def write_html(path: Path, title: str, notes: list[str], sections: list[Section],
               images: dict[str, list[Path]]) -> None:
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [f"<p class=badge>{html.escape(note)}</p>" for note in notes]
    for number_, (section_title, note, table) in enumerate(sections):
        body.append(f"<h2>{html.escape(section_title)}</h2><p class=note>{html.escape(note or '')}</p>")
        if table is not None:
            body.append(html_table(table, number_))
    for heading_, paths in images.items():
        body.append(f"<h2>{html.escape(heading_)}</h2>" if paths else "")
        for image in paths:
            source = html.escape(image.relative_to(path.parent).as_posix())
            caption = html.escape(image.name if image.parent == path.parent else f"{image.parent.name}: {image.name}")
            body.append(f"<figure><img src='{source}' alt='{html.escape(image.stem)}'>"
                        f"<figcaption>{caption}</figcaption></figure>")
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                    f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")


def write_report(paths: list[Path], out_dir: Path) -> Path:
    """Write summary.md, plots and index.html for results CSVs / sweep folders; returns the index.html path."""
    out_dir = Path(out_dir)
    csv_paths = results_files(paths)
    frame = prepare(csv_paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = sections_of(frame, csv_paths)
    notes = [*profile_notes(frame), *filter(None, [noise_note(frame)])]
    images = {"Plots": plots.write_plots(frame, out_dir),
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
