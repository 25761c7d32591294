"""Benchmark: time to iterate one training epoch of a datamodule (default mnist5k at batch 128).

    python -m benchmarks.data_speed [--data mnist5k] [--batch-size 128] [--repeats 20]

The bar for mnist5k is < 0.1 s per epoch on a 2-core CPU: the loader must cost nothing next to the model.
"""

from __future__ import annotations

import argparse
import statistics
import time

import datamodules


def epoch_seconds(name: str, batch_size: int, repeats: int) -> list[float]:
    dm = datamodules.get(name)(batch_size=batch_size, seed=0)
    dm.setup("fit")
    loader = dm.train_dataloader()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        samples = sum(len(batch[0]) for batch in loader)
        times.append(time.perf_counter() - start)
    print(f"{name}: {samples} samples per epoch, {len(loader)} batches of up to {batch_size}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    times = epoch_seconds(args.data, args.batch_size, args.repeats)
    print(f"epoch time over {args.repeats} epochs: median {statistics.median(times) * 1e3:.2f} ms, "
          f"max {max(times) * 1e3:.2f} ms, first {times[0] * 1e3:.2f} ms (bar: < 100 ms)")


if __name__ == "__main__":
    main()
