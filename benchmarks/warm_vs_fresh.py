"""Benchmark: does a run forked from the warm server measure what a fresh interpreter and a plain loop measure?

    python -m benchmarks.warm_vs_fresh [--models cnn,resnet,lstm] [--processes 5] [--profile quick]
                                       [--device cpu|cuda] [--data-args JSON]

For each model, --processes times each, alternating (the order rotates every round, so no path always goes
first or follows the same neighbour):
  warm    a normal run as `dnnbench run` starts it (bench.launch.child_process.run_child): forked from the warm server;
  fresh   the same run in a fresh interpreter (bench/launch/start.py, what DNNBENCH_WARM=0 does);
  expert  benchmarks.overhead's plain PyTorch loop on the same network, batch and data, in its own process,
          over as many steps as the runs timed.
Printed per path: the median samples/s over its processes and the spread ((max - min) / median); then the ratios
of the medians warm/fresh (bar: within 5 %), warm/expert and fresh/expert (bar: >= 0.95 on a CPU for cnn and
resnet). Rows that carried a noise_warning are counted: run it on a quiet machine, and distrust a line with any.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import lightning_modules
from bench.launch.child_process import run_child
from benchmarks.overhead import in_fresh_process, runner_config

PATHS = ("warm", "fresh", "expert")


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values) if len(values) > 1 else 0.0


def run_rate(name: str, args, out_dir: Path, fresh: bool) -> tuple[float, int, bool]:
    """(train_samples_per_s, timed steps, noisy) of one run through the runner's own launch path."""
    row = run_child(runner_config(name, args.profile, args.device, args.data), out_dir, fresh=fresh)
    if row.status != "ok":
        raise RuntimeError(f"{'fresh' if fresh else 'warm'} run status {row.status}: {row.message}")
    return (float(row.get("train_samples_per_s")), int(float(row.get("timed_steps") or 0)),
            bool(row.get("noise_warning")))


def measure_model(name: str, args, out_dir: Path) -> str:
    rates: dict[str, list[float]] = {path: [] for path in PATHS}
    steps, noisy = 100, 0
    for round_index in range(args.processes):
        order = PATHS[round_index % 3:] + PATHS[:round_index % 3]
        for path in order:
            if path == "expert":
                rate = in_fresh_process("expert", name, max(steps, 20), args.device, args.data)
                if rate is not None:
                    rates[path].append(rate)
                continue
            rate, timed, was_noisy = run_rate(name, args, out_dir, fresh=path == "fresh")
            rates[path].append(rate)
            steps, noisy = timed or steps, noisy + was_noisy
    return table_line(name, rates, noisy)


def table_line(name: str, rates: dict[str, list[float]], noisy: int) -> str:
    medians = {path: statistics.median(values) if values else None for path, values in rates.items()}

    def ratio(a: str, b: str) -> str:
        top, bottom = medians[a], medians[b]
        return f"{top / bottom:7.3f}" if top and bottom else f"{'n/a':>7s}"

    cells = " ".join(f"{medians[p]:10.1f} {spread(rates[p]):6.3f}" if medians[p] else f"{'n/a':>10s} {'':6s}"
                     for p in PATHS)
    return (f"{name:12s} {cells}  {ratio('warm', 'fresh')} {ratio('warm', 'expert')} {ratio('fresh', 'expert')}"
            f"  {noisy}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="cnn,resnet,lstm")
    parser.add_argument("--processes", type=int, default=5, help="processes per path and model (>= 5 for a claim)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--profile", default="quick", help="runner profile")
    parser.add_argument("--data-args", default="{}", help="JSON: synthetic data instead of the default, as in "
                        "benchmarks.overhead")
    args = parser.parse_args()
    args.data = json.loads(args.data_args)
    names = lightning_modules.names() if args.models == "all" else args.models.split(",")
    print(f"device {args.device}, profile {args.profile}, {args.processes} process(es) per path, alternating; "
          "medians of samples/s and spread (max - min) / median")
    print(f"{'model':12s} " + " ".join(f"{p:>10s} {'spread':>6s}" for p in PATHS)
          + f"  {'w/fresh':>7s} {'w/exp':>7s} {'f/exp':>7s}  noisy rows")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            try:
                print(measure_model(name, args, Path(tmp)), flush=True)
            except RuntimeError as exc:
                print(f"{name:12s} failed: {exc}", flush=True)


if __name__ == "__main__":
    main()
