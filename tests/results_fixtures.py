"""Made-up results rows, and a sweep folder with an inference curve, for read-back tests (clearly fixtures: no
measurement behind them)."""

import csv
from pathlib import Path

from bench.core.columns import COLUMNS, SCHEMA_VERSION
from bench.core.inference_columns import INFERENCE_COLUMNS, INFERENCE_SCHEMA_VERSION
from bench.results.io import append_inference_rows


def make_row(model="cnn", precision="32-true", status="ok", repeat=0, compile="off", **values):
    row = {c: "" for c in COLUMNS}
    row.update(model=model, datamodule="mnist5k", device="cpu", num_devices=1, num_nodes=1, strategy="auto",
               precision=precision, compile=compile, batch_size=128, profile="quick", seed=repeat, repeat=repeat,
               status=status, schema_version=SCHEMA_VERSION, metric_name="acc", metric_direction="max",
               metric_target=0.97)
    if status == "ok":
        row.update(metric_value=0.98, train_samples_per_s=1000.0, infer_samples_per_s=5000.0, latency_p50_ms=10.0,
                   latency_p95_ms=12.0, peak_rss_mb=1000.0, time_to_target_s=30.0, wall_s=60.0)
    else:
        row.update(message=f"injected {status}")
    row.update(values)
    return row


def write_csv(path, rows, columns=COLUMNS):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def inference_row(backend, batch, status="ok", **values):
    row = {c: "" for c in INFERENCE_COLUMNS}
    row.update(model="cnn", datamodule="mnist5k", device="cpu", num_devices=1, num_nodes=1, precision="32-true",
               compile="off", batch_size=128, profile="quick", seed=0, repeat=0, run_id="cnn-r0", backend=backend,
               infer_batch_size=batch, status=status, schema_version=INFERENCE_SCHEMA_VERSION, metric_name="acc",
               metric_direction="max")
    if status == "ok":
        row.update(infer_samples_per_s=1000.0 * batch, latency_p50_ms=1.0, latency_p95_ms=1.5, metric_value=0.98,
                   metric_drift=0.0, speedup_vs_eager=1.0)
    else:
        row.update(message="no Linear/LSTM/GRU layer")
    return row | values


def sweep_folder_with_curve(path: Path, points: list[dict]) -> Path:
    path.mkdir()
    write_csv(path / "results.csv", [make_row()])
    append_inference_rows(path / "inference.csv", points)
    return path


INFERENCE_CURVE = [inference_row("eager", 1), inference_row("eager", 16), inference_row("onnxruntime", 1),
                   inference_row("onnxruntime", 16), inference_row("int8", 1, "unsupported"),
                   inference_row("int8", 16, "unsupported")]
