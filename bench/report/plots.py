"""The report's charts (step: the report's rows -> PNG files with captions): quality vs time to target (the
overview), throughput, speed-up over 32-true, latency, memory, MFU, energy.

Every chart gives each model one colour, the same in every chart (12 distinct colours, one per family), and each
config one marker. Values are dots on a row per model: a dot needs no zero baseline, so a wide range goes on a
log axis without a bar that starts from an arbitrary floor; narrow ranges stay linear from 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

from bench.core.columns import Status
from bench.core.numbers import human
from bench.core.private_files import READABLE, replace_file
from bench.report.tables import against_baseline, memory_column

MARKERS = "osD^vP*X<>ph"  # one per config, in sweep order
# tab10, then black and a bright yellow: 12 colours no two of which are shades of one hue (tab20's pairs are).
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#000000", "#ffd400")
WIDE = 20  # a range wider than this factor goes on a log axis
PLOT_NAMES = ("quality_vs_time.png", "throughput.png", "speedup.png", "inference.png", "latency.png",
              "memory.png", "mfu.png", "energy.png")


class Chart(NamedTuple):
    path: Path
    caption: str  # what to read from it


class Style(NamedTuple):
    colours: dict  # model -> colour
    markers: dict  # config label -> marker


def save_png(fig, path: Path, dpi: int) -> None:
    """The figure as a PNG at `path` (renamed into place: a link planted there is replaced, not written through),
    then closed."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    replace_file(path, buffer.getvalue(), READABLE)


def style_of(frame: pd.DataFrame) -> Style:
    """Colours by model (sorted, over every row: a model keeps its colour whichever charts it appears in) and
    markers by config label (sweep order)."""
    models = sorted(set(frame["model"]))
    labels = list(dict.fromkeys(frame["config_label"]))
    return Style({m: COLOURS[i % len(COLOURS)] for i, m in enumerate(models)},
                 {c: MARKERS[i % len(MARKERS)] for i, c in enumerate(labels)})


def by_model_and_config(ok: pd.DataFrame, values: pd.Series) -> pd.DataFrame:
    """Median of `values` per model (rows, sorted) and config (columns, in sweep order)."""
    data = ok.assign(value=values).pivot_table(index="model", columns="config_label", values="value",
                                               aggfunc="median")
    return data.reindex(columns=[c for c in dict.fromkeys(ok["config_label"]) if c in data.columns])


def dot_chart(data: pd.DataFrame, style: Style, title: str, xlabel: str, path: Path,
              upper: pd.DataFrame | None = None, reference: float | None = None) -> Path | None:
    """One row per model, one dot per config (colour: model, marker: config); `upper`: a line from each dot to
    this value (e.g. p95); `reference`: a vertical line (e.g. 1 for speed-ups)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    data = data.dropna(how="all").dropna(axis=1, how="all")
    if data.empty:
        return None
    models = list(data.index)
    upper = upper.reindex_like(data) if upper is not None else None
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.42 * len(models)), layout="constrained")
    offsets = {c: (i - (len(data.columns) - 1) / 2) * 0.5 / max(1, len(data.columns)) for i, c in
               enumerate(data.columns)}
    for row, model in enumerate(models):
        for config, value in data.loc[model].dropna().items():
            y = row + offsets[config]
            if upper is not None and pd.notna(upper.at[model, config]):
                ax.plot([value, upper.at[model, config]], [y, y], color=style.colours[model], linewidth=1.2)
            ax.plot(value, y, marker=style.markers[config], color=style.colours[model], markersize=8, linestyle="")
    values = data.stack()
    if values.min() > 0 and values.max() > WIDE * values.min():
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: human(value)))  # 0.1, 1, 10, not 10^-1
    else:
        ax.set_xlim(left=min(0, values.min() * 1.1), right=max(values.max(), reference or 0) * 1.1)
    if reference is not None:
        ax.axvline(reference, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(models)), models)
    ax.invert_yaxis()  # models read top-down, as in the tables
    ax.set_title(title)
    ax.set_xlabel(xlabel + (" (log scale)" if ax.get_xscale() == "log" else ""))
    ax.grid(axis="x", alpha=0.3, which="both")
    handles = [Line2D([], [], marker=style.markers[c], linestyle="", color="black", label=c) for c in data.columns]
    ax.legend(handles=handles, title="config", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_png(fig, path, dpi=100)
    return path


def speedups(ok: pd.DataFrame) -> pd.DataFrame:
    """Train throughput of each variant over its 32-true eager baseline (ratio of medians), model x variant."""
    ratios = [{"model": model, "config_label": label,
               "value": variant["train_samples_per_s"].median() / base["train_samples_per_s"].median()}
              for model, label, variant, base in against_baseline(ok)]
    if not ratios:
        return pd.DataFrame()
    table = pd.DataFrame(ratios).pivot_table(index="model", columns="config_label", values="value")
    return table.reindex(columns=[c for c in dict.fromkeys(ok["config_label"]) if c in table.columns])


def quality_relative_to_target(ok: pd.DataFrame) -> pd.DataFrame:
    """Rows with a metric and a target, with `quality` = metric / target (target / metric where lower is better)."""
    rows = ok.dropna(subset=["metric_value", "metric_target"])
    relative = rows["metric_value"] / rows["metric_target"]
    inverse = rows["metric_target"] / rows["metric_value"]
    return rows.assign(quality=relative.where(rows["metric_direction"] != "min", inverse))


def quality_chart(ok: pd.DataFrame, style: Style, path: Path) -> Path | None:
    """Test quality / target against time to target: colour per model, marker per config; hollow markers did not
    reach the target (judged on validation) and sit at the run's wall time instead."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rows = quality_relative_to_target(ok)
    if rows.empty:
        return None
    reached = rows["reached_target"].eq("yes") & rows["time_to_target_s"].notna()
    fig, ax = plt.subplots(figsize=(11, 5), layout="constrained")
    for (model, label, hit), group in rows.groupby(["model", "config_label", reached]):
        x = group["time_to_target_s"] if hit else group["wall_s"]
        ax.scatter(x, group["quality"], s=60, marker=style.markers[label], edgecolors=style.colours[model],
                   facecolors=style.colours[model] if hit else "none", linewidths=1.5)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlim(left=0)
    ax.set_title("Quality vs time to target" if reached.any() else "Quality vs run time: no run reached its target")
    ax.set_xlabel("time to target (s); hollow: target not reached (validation), placed at the run's wall time")
    ax.set_ylabel("test quality / target (1 = target)")
    ax.grid(alpha=0.3)
    models = sorted(set(rows["model"]))
    labels = [c for c in style.markers if c in set(rows["config_label"])]
    model_handles = [Line2D([], [], marker="o", linestyle="", color=style.colours[m], label=m) for m in models]
    config_handles = [Line2D([], [], marker=style.markers[c], linestyle="", color="black", label=c) for c in labels]
    first = ax.legend(handles=model_handles, title="model", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.add_artist(first)
    ax.legend(handles=config_handles, title="config", fontsize=8, loc="lower left", bbox_to_anchor=(1.01, 0.0))
    save_png(fig, path, dpi=100)
    return path


def write_plots(frame: pd.DataFrame, out_dir: Path) -> list[Chart]:
    """Every chart the rows allow, with its caption, the overview chart first; a chart with no data is left out."""
    import matplotlib

    matplotlib.use("Agg")
    ok = frame[frame["status"] == Status.OK.value]
    style = style_of(frame)
    memory = memory_column(frame)
    medians = {column: by_model_and_config(ok, ok[column]) for column in
               ("train_samples_per_s", "infer_samples_per_s", "latency_p50_ms", "latency_p95_ms", memory)}
    charts = [
        (quality_chart(ok, style, out_dir / "quality_vs_time.png"), "Each run's test quality against its time to "
         "target: up and left is better; on or above the dashed line the test split met the target, filled "
         "markers reached it on validation (hollow ones did not and sit at the run's wall time)."),
        (dot_chart(medians["train_samples_per_s"], style, "Train throughput (Trainer loop)", "samples/s",
                   out_dir / "throughput.png"), "Training samples per second: right is faster."),
        (dot_chart(speedups(ok), style, "Train speed-up over 32-true eager", "x 32-true's samples/s",
                   out_dir / "speedup.png", reference=1.0), "Right of the dashed line a precision or compile "
         "trains faster than the same config in 32-true eager, left of it slower."),
        (dot_chart(medians["infer_samples_per_s"], style, "Inference throughput", "samples/s",
                   out_dir / "inference.png"), "Inference samples per second at the run's batch size: right is "
         "faster."),
        (dot_chart(medians["latency_p50_ms"], style, "Inference latency at the run's batch size (dot: p50, line to "
                   "p95)", "ms", out_dir / "latency.png", upper=medians["latency_p95_ms"]),
         "Latency of one batch: left is faster; a long line is a long tail."),
        (dot_chart(medians[memory], style, "Peak memory (the memory table's column)", f"{memory} (MiB)",
                   out_dir / "memory.png"), "Peak memory of the run (the column the memory table shows): left "
         "uses less."),
        (dot_chart(by_model_and_config(ok, ok["mfu"] * 100), style, "Model FLOPs utilisation (MFU)",
                   "% of the device's dense peak", out_dir / "mfu.png"), "Share of the device's peak the model "
         "used: right is better."),
        (dot_chart(by_model_and_config(ok, ok["train_joules_per_sample"] * 1e3), style, "Training energy per sample "
                   "(NVML / RAPL counters)", "mJ per sample", out_dir / "energy.png"),
         "Energy per training sample over the speed window: left uses less."),
    ]
    made = [Chart(path, caption) for path, caption in charts if path is not None]
    for stale in set(PLOT_NAMES) - {chart.path.name for chart in made}:  # from an earlier report of other rows
        (out_dir / stale).unlink(missing_ok=True)
    (out_dir / "gpu_memory.png").unlink(missing_ok=True)  # older reports drew it; memory.png follows the table now
    return made
