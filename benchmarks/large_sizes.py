"""Benchmark: every model at its `large` size on a GPU, with the MFU bars of issue 12.

    python -m benchmarks.large_sizes [--models all] [--precisions bf16-mixed] [--compile off] [--out DIR]

Runs `dnnbench run --sizes large --devices cuda --profile quick` (one child per config, as any sweep) and prints
each row's status, batch, train samples/s, MFU and peak memory. Bars (bf16-mixed): no row diverged; MFU >= 0.35 for
the transformer and >= 0.50 for the MLP (llm-foundry reaches 35-46 % on H100 for 760M-7B models). Needs a quiet
machine with a CUDA device; prints the numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.cli import main as dnnbench
from bench.results.io import load_results

MFU_BARS = {"transformer": 0.35, "mlp": 0.50}  # bf16-mixed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="all")
    parser.add_argument("--precisions", default="bf16-mixed")
    parser.add_argument("--compile", default="off")
    parser.add_argument("--out", default=None, help="sweep folder (default: a temporary one)")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="dnnbench-large-"))
    code = dnnbench(["run", "--models", args.models, "--sizes", "large", "--devices", "cuda", "--profile", "quick",
                     "--precisions", args.precisions, "--compile", args.compile, "--wandb", "disabled",
                     "--no-progress", "--out", str(out)])
    if code != 0:
        return code
    frame = load_results(out / "results.csv")
    print(f"\n{'model':12s} {'precision':11s} {'status':9s} {'batch':>6s} {'samples/s':>11s} {'mfu':>6s} "
          f"{'peak MiB':>9s}  bar")
    for row in frame.to_dict("records"):
        bar = MFU_BARS.get(row["model"]) if row["precision"] == "bf16-mixed" else None
        verdict = "" if bar is None else f"mfu >= {bar:.2f}: {'met' if row['mfu'] >= bar else 'NOT met'}"
        print(f"{row['model']:12s} {row['precision']:11s} {row['status']:9s} {row['batch_size']:>6} "
              f"{row['train_samples_per_s']:>11.1f} {row['mfu']:>6.3f} {row['peak_gpu_mem_allocated_mb']:>9.0f}  "
              f"{verdict}")
    print(f"\nresults: {out / 'results.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
