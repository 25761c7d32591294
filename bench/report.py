"""`dnnbench report RESULTS.csv... [--out DIR]`: summary.md, PNG plots and an offline index.html (step: rows read
through the one reader -> tables and plots)."""

from __future__ import annotations

import argparse
import html
import math
import statistics
import sys
from pathlib import Path

import pandas as pd

from bench import config as cfg
from bench.results_io import ResultsError, load_results
from bench.stats import summarize

NAME, HELP = "report", "render summary.md, plots and index.html from results CSVs"

TABLES = [  # (title, column, unit note)
    ("Quality (test metric)", "metric_value", "each model's own metric; (max) higher is better, (min) lower"),
    ("Train throughput (samples/s)", "train_samples_per_s", "higher is better"),
    ("Inference throughput (samples/s)", "infer_samples_per_s", "higher is better"),
    ("Peak memory (MiB)", None, "GPU max allocated where measured, else peak RSS of the run; lower is better"),
    ("Time to target (s)", "time_to_target_s", "empty: target not reached; lower is better"),
]


def cell(rows: pd.DataFrame, column: str) -> str:
    """One pivot cell: the centre of the ok repeats, or the failure status when none succeeded."""
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        return "/".join(sorted(set(rows["status"])))
    values = ok[column].dropna().tolist()
    if not values:
        return ""
    centre, spread = summarize(values)
    text = f"{centre:.4g}"
    if spread is not None:
        text += f" ±{spread / 2:.2g} (n={len(values)})"
    return text


def memory_column(frame: pd.DataFrame) -> str:
    gpu = frame.get("peak_gpu_mem_allocated_mb")
    return "peak_gpu_mem_allocated_mb" if gpu is not None and gpu.notna().any() else "peak_rss_mb"


def pivot(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Model rows x (device precision [compiled]) columns."""
    labels = list(dict.fromkeys(frame["config_label"]))
    table = {}
    for model, model_rows in frame.groupby("model", sort=True):
        table[model] = {label: cell(group, column) for label, group in model_rows.groupby("config_label")}
    result = pd.DataFrame.from_dict(table, orient="index").reindex(columns=labels).fillna("")
    if column == "metric_value":
        metric = frame.groupby("model")["metric_name"].first() + " (" + \
            frame.groupby("model")["metric_direction"].first() + ")"
        result.insert(0, "metric", metric)
    result.index.name = "model"
    return result


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
            medians = " ".join(f"{name}={statistics.median(v):.4g}" for name, v in values.items())
            rows.append({"model": model, "config": label, "median of repeats": medians})
    return pd.DataFrame(rows)


def varying_axes_labels(frame: pd.DataFrame) -> pd.Series:
    """Pivot headings from the config identity: device and precision always, other axes where a model varies them.

    Two batch sizes of one model are two columns, never repeats of one (the identity tells them apart).
    """
    always = ("device", "precision", "compile")
    constant = tuple(axis for axis in cfg.IDENTITY if axis not in always
                     and frame.groupby("model")[axis].nunique().max() <= 1)
    rows = frame.to_dict("records")
    return pd.Series([cfg.label(row, leave_out=("model", *constant)) for row in rows], index=frame.index)


def relative_to_baseline(frame: pd.DataFrame) -> pd.DataFrame:
    """Speed-up (train samples/s ratio) and quality drift of each precision / compile vs 32-true eager."""
    ok = frame[frame["status"] == "ok"]
    rows = []
    # The baseline of a variant is the same config in 32-true eager: every other identity axis held equal.
    held = [axis for axis in cfg.IDENTITY if axis not in ("precision", "compile")]
    for key, group in ok.groupby(held, sort=True):
        model = key[0]
        base = group[(group["precision"] == "32-true") & (group["compile"] == "off")]
        if base.empty:
            continue
        base_speed = base["train_samples_per_s"].median()
        base_quality = base["metric_value"].median()
        base_infer = base["infer_samples_per_s"].median()
        for label, variant in group.groupby("config_label"):
            if variant.index.isin(base.index).all():
                continue
            rows.append({"model": model, "variant": label,
                         "train speed-up": f"{variant['train_samples_per_s'].median() / base_speed:.2f}x",
                         "infer speed-up": f"{variant['infer_samples_per_s'].median() / base_infer:.2f}x",
                         "quality drift": f"{variant['metric_value'].median() - base_quality:+.4g}"
                         if pd.notna(base_quality) else ""})
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame, index: bool = True) -> str:
    frame = table.reset_index() if index else table
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def plots(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = frame[frame["status"] == "ok"]
    paths = []
    for column, title, name in (("train_samples_per_s", "Train throughput (samples/s, log scale)", "throughput.png"),
                                (memory_column(frame), "Peak memory (MiB)", "memory.png")):
        data = ok.pivot_table(index="model", columns="config_label", values=column, aggfunc="median")
        if data.empty:
            continue
        ax = data.plot.bar(figsize=(max(6, 0.8 * len(data) * max(1, len(data.columns)) / 2), 4.5), rot=30)
        ax.set_title(title)
        ax.set_xlabel("")
        if column == "train_samples_per_s":
            ax.set_yscale("log")
            # Bars on a log axis start at its bottom: put that a decade below the smallest value so no bar looks ~0.
            low = float(data.min().min())
            ax.set_ylim(bottom=10 ** math.floor(math.log10(low)) / 10 if low > 0 else None)
        ax.legend(fontsize=8)
        ax.figure.tight_layout()
        ax.figure.savefig(out_dir / name, dpi=100)
        plt.close(ax.figure)
        paths.append(out_dir / name)
    reached = ok.dropna(subset=["metric_value", "metric_target"])
    if not reached.empty:
        # Models measure different things (acc, FID, MSE, return): plot quality relative to each one's target.
        relative = reached["metric_value"] / reached["metric_target"]
        inverse = reached["metric_target"] / reached["metric_value"]
        reached = reached.assign(quality=relative.where(reached["metric_direction"] != "min", inverse))
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for model, group in reached.groupby("model"):
            x = group["time_to_target_s"].fillna(group["wall_s"])
            ax.scatter(x, group["quality"], label=model)
            for xi, yi, hollow in zip(x, group["quality"], group["time_to_target_s"].isna()):
                if hollow:
                    ax.scatter([xi], [yi], facecolors="none", edgecolors="black", s=80)
        ax.set_xscale("log")
        ax.set_xlabel("time to target (s); circled: target not reached, total wall time instead")
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_ylabel("test quality / target (1 = target met, higher is better)")
        ax.set_title("Quality vs time to target")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(out_dir / "quality_vs_time.png", dpi=100)
        plt.close(fig)
        paths.append(out_dir / "quality_vs_time.png")
    return paths


def write_report(csv_paths: list[Path], out_dir: Path) -> Path:
    """Write summary.md, plots and index.html for results CSVs; returns the index.html path."""
    out_dir = Path(out_dir)
    frame = pd.concat([load_results(path) for path in csv_paths], ignore_index=True)
    frame["config_label"] = varying_axes_labels(frame)
    names = ", ".join(Path(p).name if len(csv_paths) == 1 else str(p) for p in csv_paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = []
    counts = frame["status"].value_counts()
    sections.append(("Runs", f"{len(frame)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()), None))
    for title, column, note in TABLES:
        column = column or memory_column(frame)
        sections.append((title, note, pivot(frame, column)))
    relative = relative_to_baseline(frame)
    if not relative.empty:
        sections.append(("Against 32-true eager", "train/inference speed-up and quality drift (median of repeats)",
                         relative.set_index("model")))
    others = other_metrics_table(frame)
    if not others.empty:
        sections.append(("Other test metrics", "each model's secondary metrics as name=value",
                         others.set_index("model")))
    failed = frame[frame["status"] != "ok"]
    if not failed.empty:
        sections.append(("Failed runs", "status and reason",
                         failed[["model", "config_label", "status", "message"]].set_index("model")))
    images = plots(frame, out_dir)
    artifacts = sorted((out_dir / "artifacts").glob("*/*.png")) if (out_dir / "artifacts").is_dir() else []

    markdown = [f"# dnnbench summary: {names}", ""]
    for title, note, table in sections:
        markdown += [f"## {title}", "", note or "", ""]
        if table is not None:
            markdown += [markdown_table(table), ""]
    for image in images + artifacts:
        markdown.append(f"![{image.stem}]({image.relative_to(out_dir).as_posix()})")
    (out_dir / "summary.md").write_text("\n".join(markdown) + "\n")

    body = [f"<h1>dnnbench summary</h1><p class=note>{html.escape(names)}</p>"]
    for title, note, table in sections:
        body.append(f"<h2>{html.escape(title)}</h2><p class=note>{html.escape(note or '')}</p>")
        if table is not None:
            body.append(table.to_html(escape=True, na_rep=""))
    body.append("<h2>Plots</h2>")
    for image in images + artifacts:
        source = html.escape(image.relative_to(out_dir).as_posix())
        body.append(f"<figure><img src='{source}' alt='{html.escape(image.stem)}'>"
                    f"<figcaption>{source}</figcaption></figure>")
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
             "font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "th{background:#f0f0f0}.note{color:#555}img{max-width:100%}figure{margin:1em 0}")
    index = out_dir / "index.html"
    index.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>dnnbench summary</title>"
                     f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
    return index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", help="results CSVs written by dnnbench run")
    parser.add_argument("--out", default=None, help="folder for the report (default: next to the first CSV)")


def main(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.results]
    out = Path(args.out) if args.out else paths[0].parent
    if out.exists() and not out.is_dir():
        raise ResultsError(f"report folder {out} is a file")
    try:
        index = write_report(paths, out)
    except OSError as exc:
        raise ResultsError(f"report not written to {out} ({exc.strerror or exc})") from None
    print(f"dnnbench report: {index}")
    return 0


def cli(argv: list[str]) -> int:
    """`python -m bench.report ...`: the same as `dnnbench report ...`."""
    from bench.cli import main as dnnbench

    return dnnbench([NAME, *argv])


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
