"""Timing bars of the GPU data path, checked on a quiet GPU machine (never in tests: timings are not asserted there).

    python -m benchmarks.gpu_speed          # exit 1 when a bar fails

On a GPU the in-memory data lives on the device, so the Trainer loop waits for data less than 2 % of a step, and
an inference forward pass is cheaper per sample than a training step.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from bench.core.config import RunConfig
from bench.core.row import RunRow
from bench.results.io import flatten
from bench.run import session


def main() -> int:
    if not torch.cuda.is_available():
        print("benchmarks.gpu_speed: no CUDA device here; nothing to check")
        return 0
    config = RunConfig(model="cnn", datamodule="mnist5k", device="cuda", profile="quick")
    with tempfile.TemporaryDirectory() as folder:
        measured = session.train_and_measure(config, Path(folder))
        assert measured is not None, "one device: this process is rank 0, which measures"
        row = flatten(RunRow(config, pieces=tuple(measured.pieces)))
    bars = {"data_wait_fraction < 0.02": row["data_wait_fraction"] < 0.02,
            "infer_samples_per_s > train_samples_per_s": row["infer_samples_per_s"] > row["train_samples_per_s"]}
    for bar, held in bars.items():
        print(f"{'ok  ' if held else 'FAIL'} {bar} (data_wait_fraction {row['data_wait_fraction']:.4f}, "
              f"infer {row['infer_samples_per_s']:.0f}/s, train {row['train_samples_per_s']:.0f}/s)")
    return 0 if all(bars.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
