"""Made-up results rows for report/compare tests (clearly fixtures: no measurement behind them)."""

import csv

from bench.core.columns import COLUMNS, SCHEMA_VERSION


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
