"""The report's charts (step: the report's rows -> PNG files): throughput, latency, memory, MFU, energy, quality vs
time.

Bars are one group per model and one colour per config; the quality chart has one colour per model and one
marker per precision. Legends sit beside the axes, never on the bars.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.axes import PRECISION_NAMES
from bench.core.columns import Status

MARKERS = "osD^vP*X"  # one per precision, in bench/run/precision.py's order
MAX_WIDTH_IN = 18
PLOT_NAMES = ("throughput.png", "inference.png", "latency.png", "memory.png", "gpu_memory.png", "mfu.png",
              "energy.png", "quality_vs_time.png")


def palette(n: int) -> list:
    """n distinct colours: tab10, tab20, then evenly spaced over a continuous map."""
    import matplotlib

    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n)]
    return [matplotlib.colormaps["turbo"](i / (n - 1)) for i in range(n)]


def by_model_and_config(ok: pd.DataFrame, values: pd.Series) -> pd.DataFrame:
    """Median of `values` per model (rows) and config (columns, in sweep order)."""
    data = ok.assign(value=values).pivot_table(index="model", columns="config_label", values="value",
                                               aggfunc="median")
    return data.reindex(columns=[c for c in dict.fromkeys(ok["config_label"]) if c in data.columns])


def bar_chart(data: pd.DataFrame, title: str, ylabel: str, path: Path, log: bool = False,
              upper: pd.DataFrame | None = None) -> Path | None:
    """Grouped bars (models x configs); `upper`: a whisker from each bar's top to this value (e.g. p95)."""
    import matplotlib.pyplot as plt

    data = data.dropna(how="all").dropna(axis=1, how="all")
    if data.empty:
        return None
    errors = None
    if upper is not None:
        above = (upper.reindex_like(data) - data).clip(lower=0).fillna(0)
        errors = np.stack([np.stack([np.zeros(len(data)), above[c].to_numpy()]) for c in data.columns])
    width = min(MAX_WIDTH_IN, max(7.0, 3 + 0.3 * data.size))
    fig, ax = plt.subplots(figsize=(width, 4.8), layout="constrained")  # makes room for the legend beside
    data.plot.bar(ax=ax, rot=30, width=0.8, color=palette(len(data.columns)), yerr=errors, capsize=2,
                  error_kw={"elinewidth": 0.8})
    ax.set_title("\n".join(textwrap.wrap(title, int(width * 8))))  # ~8 characters per inch at the default size
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    if log:
        ax.set_yscale("log")
        # Bars on a log axis start at its bottom: a decade below the smallest value, so no bar looks ~0.
        low = float(data[data > 0].min().min())
        if low > 0:
            ax.set_ylim(bottom=10 ** math.floor(math.log10(low)) / 10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="config", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def memory_charts(ok: pd.DataFrame, out_dir: Path) -> list[Path | None]:
    """CPU memory above the after-import baseline (whole-process peak RSS where no baseline was recorded) and
    peak GPU memory where measured."""
    above = ok["cpu_mem_above_import_mb"]
    if above.notna().any():
        cpu = bar_chart(by_model_and_config(ok, above), "CPU memory of the run (peak RSS above the RSS after "
                        "imports)", "MiB", out_dir / "memory.png")
    else:
        cpu = bar_chart(by_model_and_config(ok, ok["peak_rss_mb"]), "Peak RSS of the whole run process (these "
                        "rows have no after-import baseline)", "MiB", out_dir / "memory.png")
    gpu = bar_chart(by_model_and_config(ok, ok["peak_gpu_mem_allocated_mb"]), "Peak GPU memory "
                    "(torch.cuda.max_memory_allocated)", "MiB", out_dir / "gpu_memory.png")
    return [cpu, gpu]


def quality_relative_to_target(ok: pd.DataFrame) -> pd.DataFrame:
    """Rows with a metric and a target, with `quality` = metric / target (target / metric where lower is better)."""
    rows = ok.dropna(subset=["metric_value", "metric_target"])
    relative = rows["metric_value"] / rows["metric_target"]
    inverse = rows["metric_target"] / rows["metric_value"]
    return rows.assign(quality=relative.where(rows["metric_direction"] != "min", inverse))


def quality_chart(ok: pd.DataFrame, path: Path) -> Path | None:
    """Quality / target against time to target: one colour per model, one marker per precision; hollow markers
    did not reach the target and sit at the run's wall time instead."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    rows = quality_relative_to_target(ok)
    if rows.empty:
        return None
    reached = rows["time_to_target_s"].notna()
    models = sorted(set(rows["model"]))
    colours = dict(zip(models, palette(len(models))))
    precisions = [p for p in PRECISION_NAMES if p in set(rows["precision"])] + \
        sorted(set(rows["precision"]) - set(PRECISION_NAMES))
    markers = {p: MARKERS[i % len(MARKERS)] for i, p in enumerate(precisions)}
    fig, ax = plt.subplots(figsize=(10, 5.5), layout="constrained")
    for (model, precision, hit), group in rows.groupby(["model", "precision", reached]):
        x = group["time_to_target_s"] if hit else group["wall_s"]
        ax.scatter(x, group["quality"], s=60, marker=markers[precision], edgecolors=colours[model],
                   facecolors=colours[model] if hit else "none", linewidths=1.5)
    x_all = rows["time_to_target_s"].where(reached, rows["wall_s"])
    if x_all.max() > 20 * x_all.min() > 0:  # a log axis only where times span orders of magnitude
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    if reached.any():
        ax.set_title("Quality vs time to target")
        ax.set_xlabel("time to target (s); hollow: target not reached, placed at the run's wall time")
    else:
        ax.set_title("Quality vs run time: no run reached its target")
        ax.set_xlabel("run wall time (s)")
    ax.set_ylabel("test quality / target (1 = target met, higher is better)")
    ax.grid(alpha=0.3)
    model_handles = [Line2D([], [], marker="o", linestyle="", color=colours[m], label=m) for m in models]
    precision_handles = [Line2D([], [], marker=markers[p], linestyle="", color="black", label=p) for p in precisions]
    first = ax.legend(handles=model_handles, title="model", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.add_artist(first)
    ax.legend(handles=precision_handles, title="precision", fontsize=8, loc="lower left", bbox_to_anchor=(1.01, 0.0))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Every chart the rows allow; a chart with no data is left out."""
    import matplotlib

    matplotlib.use("Agg")
    ok = frame[frame["status"] == Status.OK.value]
    charts = [
        bar_chart(by_model_and_config(ok, ok["train_samples_per_s"]), "Train throughput (Trainer loop)",
                  "samples/s (log scale)", out_dir / "throughput.png", log=True),
        bar_chart(by_model_and_config(ok, ok["infer_samples_per_s"]), "Inference throughput",
                  "samples/s (log scale)", out_dir / "inference.png", log=True),
        bar_chart(by_model_and_config(ok, ok["latency_p50_ms"]), "Inference latency at the run's batch size "
                  "(bar: p50, whisker: p95)", "ms (log scale)", out_dir / "latency.png", log=True,
                  upper=by_model_and_config(ok, ok["latency_p95_ms"])),
        *memory_charts(ok, out_dir),
        bar_chart(by_model_and_config(ok, ok["mfu"] * 100), "Model FLOPs utilisation (MFU)",
                  "% of the device's dense peak", out_dir / "mfu.png"),
        bar_chart(by_model_and_config(ok, ok["train_joules_per_sample"] * 1e3), "Training energy per sample over "
                  "the speed window (NVML / RAPL counters)", "mJ per sample (log scale)", out_dir / "energy.png",
                  log=True),
        quality_chart(ok, out_dir / "quality_vs_time.png"),
    ]
    made = [chart for chart in charts if chart is not None]
    for stale in set(PLOT_NAMES) - {chart.name for chart in made}:  # from an earlier report of other rows
        (out_dir / stale).unlink(missing_ok=True)
    return made
