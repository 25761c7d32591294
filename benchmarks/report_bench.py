"""Benchmark: `report` on a 1,000-row results CSV (bar < 5 s) and `compare` of two such files (bar < 2 s).

    python -m benchmarks.report_bench

The rows are generated (12 models x 2 devices x 4 precisions x 2 compile x ~5 repeats, some failed), not
measured: this times the reporting code, nothing else.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.cli import main as dnnbench
from bench.core.columns import COLUMNS, SCHEMA_VERSION
from bench.report.page import write_report

MODELS = ["mlp", "cnn", "rnn", "lstm", "dbn", "gan", "autoencoder", "resnet", "capsnet", "transformer", "attention",
          "dqn"]


def generated_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    combos = itertools.cycle(itertools.product(MODELS, ("cpu", "cuda"), ("32-true", "bf16-mixed", "16-mixed",
                                                                          "bf16-true"), ("off", "on")))
    rows: list[dict[str, Any]] = []
    repeats: dict[tuple[str, ...], int] = {}
    for _ in range(n):
        model, device, precision, compiled = next(combos)
        key = (model, device, precision, compiled)
        repeats[key] = repeats.get(key, -1) + 1
        row: dict[str, Any] = {c: "" for c in COLUMNS}
        row.update(model=model, datamodule="mnist5k", device=device, num_devices=1, num_nodes=1, strategy="auto",
                   precision=precision, compile=compiled, batch_size=128, profile="quick", seed=repeats[key],
                   repeat=repeats[key], schema_version=SCHEMA_VERSION, metric_name="acc", metric_direction="max",
                   metric_target=0.9)
        if rng.random() < 0.05:
            row.update(status=rng.choice(["oom", "error", "timeout"]), message="generated failure")
        else:
            row.update(status="ok", metric_value=rng.uniform(0.85, 0.99),
                       train_samples_per_s=rng.uniform(100, 10000), infer_samples_per_s=rng.uniform(1000, 50000),
                       latency_p50_ms=rng.uniform(1, 50), latency_p95_ms=rng.uniform(50, 60),
                       peak_rss_mb=rng.uniform(900, 2000), peak_gpu_mem_allocated_mb=rng.uniform(100, 5000),
                       time_to_target_s=rng.uniform(10, 100), wall_s=rng.uniform(20, 200))
        rows.append(row)
    return rows


def write(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = write(Path(tmp) / "base.csv", generated_rows(1000, 0))
        new = write(Path(tmp) / "new.csv", generated_rows(1000, 1))
        start = time.perf_counter()
        write_report([base], Path(tmp) / "report")
        report_s = time.perf_counter() - start
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = dnnbench(["compare", str(base), str(new)])
        compare_s = time.perf_counter() - start
    print(f"report on 1000 rows: {report_s:.2f} s (bar < 5 s)")
    print(f"compare of two 1000-row files: {compare_s:.2f} s (bar < 2 s), exit code {code}")


if __name__ == "__main__":
    main()
