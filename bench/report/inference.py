"""Report: inference backends (step: the inference.csv rows beside the results, through the one reader -> the
backend table, with speed-up and quality drift against eager, and one latency-throughput chart per model).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.core.columns import Status
from bench.core.numbers import human
from bench.report.plots import Chart, save_png
from bench.results.io import inference_beside, load_inference

CHART = "inference_curves.png"
SHOWN = {"infer_samples_per_s": "samples/s", "speedup_vs_eager": "speed-up vs eager", "latency_p50_ms": "p50 (ms)",
         "latency_p95_ms": "p95 (ms)", "metric_value": "metric", "metric_drift": "drift vs eager",
         "export_s": "export (s)", "compile_s": "compile (s)"}


def inference_frame(csv_paths: list[Path]) -> pd.DataFrame:
    """Every inference.csv beside the results files (an empty frame when there is none)."""
    frames = []
    for path in csv_paths:
        frame = load_inference(inference_beside(path))
        if not frame.empty:
            frames.append(frame.assign(source=str(Path(path).parent)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def point_summary(rows: pd.DataFrame) -> dict:
    """One (model, config, backend, batch size): medians of the ok repeats, the statuses, the first reason."""
    ok = rows[rows["status"] == Status.OK.value]
    cells = {title: human(ok[column].median()) if ok[column].notna().any() else ""
             for column, title in SHOWN.items()}
    notes = (note for message in rows["message"].fillna("") for note in message.split("; "))
    reasons = [note for note in notes if note and not note.startswith("latency p")]  # those are in the CSV
    return {"status": "/".join(sorted(set(rows["status"]))), **cells,
            "detail": next((d for d in rows["backend_detail"].fillna("") if d), ""),
            "message": reasons[0][:160] if reasons else ""}


def backend_table(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["model", "config_label", "backend", "infer_batch_size"]
    order = {name: i for i, name in enumerate(dict.fromkeys(frame["backend"]))}
    rows = []
    for (model, label, backend, batch), group in frame.groupby(keys, sort=False):
        rows.append({"model": model, "config": label, "backend": backend, "batch": int(batch),
                     **point_summary(group)})
    table = pd.DataFrame(rows)
    table = table.sort_values(["model", "config", "backend", "batch"],
                              key=lambda c: c.map(order) if c.name == "backend" else c, kind="stable")
    return table.fillna("").reset_index(drop=True)


def sections(frame: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame | None]]:
    """The report's backend section (none without inference rows)."""
    if frame.empty:
        return []
    return [("Inference backends", "each backend at each batch size (inference.csv): throughput, its speed-up "
             "against eager at the same batch, latency, the model's test metric through the backend and its drift "
             "from eager (the metric is the model's own: metric_name in inference.csv), export and compile time; "
             "medians of the ok repeats; `unsupported` rows give the reason", backend_table(frame))]


def curve_chart(frame: pd.DataFrame, out_dir: Path) -> Chart | None:
    """Latency (p50) against throughput per model and config: one line per backend, one point per batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = out_dir / CHART
    ok = frame[(frame["status"] == Status.OK.value) & frame["latency_p50_ms"].notna()] if not frame.empty else frame
    if ok.empty:
        path.unlink(missing_ok=True)  # from an earlier report of other rows
        return None
    panels = list(ok.groupby(["model", "config_label"], sort=False))
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4.2 * rows), squeeze=False,
                             layout="constrained")
    colours = {name: plt.get_cmap("tab10")(i) for i, name in enumerate(dict.fromkeys(frame["backend"]))}
    for ax, ((model, label), points) in zip(axes.flat, panels):
        for backend, line in points.groupby("backend", sort=False):
            line = line.groupby("infer_batch_size")[["latency_p50_ms", "infer_samples_per_s"]].median()
            ax.plot(line["latency_p50_ms"], line["infer_samples_per_s"], marker="o", label=backend,
                    color=colours[backend])
            for batch, (latency, rate) in line.iterrows():
                ax.annotate(f"{int(batch)}", (latency, rate), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set(xscale="log", yscale="log", title=f"{model} {label}".strip(), xlabel="latency p50 (ms)",
               ylabel="samples/s")
        ax.grid(alpha=0.3, which="both")
        ax.legend(title="backend", fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Inference: latency vs throughput per backend (numbers: batch sizes; up and left is better)")
    save_png(fig, path, dpi=100)
    return Chart(path, "Per backend, latency against throughput as the batch grows (numbers: batch sizes): up and "
                 "left is better: more samples per second for less latency.")
