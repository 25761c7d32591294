"""Benchmark: what the runner adds to training, per model, against a bare Lightning Trainer and an expert loop.

    python -m benchmarks.overhead [--models cnn,resnet] [--device cpu|cuda] [--profile quick] [--repeats 3]
                                  [--same-process]

Three measurements of the same module, datamodule and batch size, each in a fresh process (so none inherits
another's allocator or thread state), alternating over the repeats; with --same-process, alternating in one
process on one module instead (the runner's own speed-window fit in place of a whole run), which removes the
process-to-process spread that on a small shared CPU is larger than the harness's cost:
  runner   a `dnnbench` run: its Trainer-loop throughput (train_samples_per_s) and its model cost on the device
           (device_samples_per_s, from the profiler's kernel/op times);
  bare     a Lightning Trainer with no logger and no callbacks of ours, on the same batches (on a GPU the
           datamodule's device-resident ones), timed over the same number of steps after the same warm-up;
  expert   a plain PyTorch loop: forward, loss, backward, AdamW step (manual-optimization modules step their own
           optimizers) on batches already on the device, the host waiting only at the ends of 10-step windows.
Printed ratios (medians of the repeats): runner train / bare (the harness's own cost: bar >= 0.95), runner device /
expert device (the model-cost measure, device-busy time on both sides; --same-process only: bar >= 0.95) and runner
train / expert (on a CPU the bar is >= 0.95 for cnn and resnet; on a GPU, for resnet on synthetic 3x224x224 at batch
256, device-bound).
A module whose step needs the Trainer itself (dbn: the epoch decides which RBM trains) has no expert loop (n/a).
The measurements live in bench/run/overhead.py (`dnnbench check` probes with them too); this is their table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

import lightning_modules
from bench.core.row import RunRow
from bench.launch.child_process import run_child
from bench.run.measure.memory import keep_freed_host_memory
from bench.run.overhead import NeedsTrainer, alternate, bare_trainer_samples_per_s, expert_samples_per_s, runner_config

NEEDS_TRAINER_EXIT = 3  # exit code of an --expert child whose module cannot step without a Trainer


def runner_row(name: str, profile: str, device: str, data_args: dict, out_dir: Path) -> RunRow:
    row = run_child(runner_config(name, profile, device, data_args), out_dir)
    if row.status != "ok":
        raise RuntimeError(f"runner status {row.status}: {row.message}")
    return row


def in_fresh_process(mode: str, name: str, steps: int, device: str, data_args: dict) -> float | None:
    command = [sys.executable, "-m", "benchmarks.overhead", f"--{mode}", name, "--steps", str(steps), "--device",
               device, "--data-args", json.dumps(data_args)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if result.returncode == NEEDS_TRAINER_EXIT:
        return None
    if result.returncode != 0:
        raise RuntimeError(f"{mode} for {name} failed: {result.stderr.strip().splitlines()[-1:]}")
    return float(result.stdout.strip().splitlines()[-1])


def present(values: Sequence[float | None]) -> list[float]:
    """The measured values (an --expert child that needs a Trainer measured none)."""
    return [value for value in values if value]


def ratio(a: Sequence[float | None], b: Sequence[float | None]) -> str:
    top, bottom = present(a), present(b)
    return f"{statistics.median(top) / statistics.median(bottom):6.3f}" if top and bottom else "   n/a"


def measure_model(name: str, args, out_dir: Path) -> str:
    runner, device_cost, bare, expert = [], [], [], []
    for _ in range(args.repeats):
        row = runner_row(name, args.profile, args.device, args.data, out_dir)
        runner.append(float(row.get("train_samples_per_s")))
        device_cost.append(float(row.get("device_samples_per_s") or "nan"))
        steps = max(int(float(row.get("timed_steps") or 0)), 20)
        bare.append(in_fresh_process("bare", name, steps, args.device, args.data))
        expert.append(in_fresh_process("expert", name, steps, args.device, args.data))
    return table_line(name, runner, device_cost, bare, expert, [])  # a fresh expert process reads no device time


def measure_in_one_process(name: str, args, out_dir: Path) -> str:
    """bench.run.overhead.alternate: the three alternating in this process on one module (no process-to-process
    difference, which on a small shared CPU is larger than the harness's cost)."""
    measured = alternate(runner_config(name, args.profile, args.device, args.data), args.repeats, out_dir)
    return table_line(name, measured.runner, [d or float("nan") for d in measured.device_cost], measured.bare,
                      measured.expert, measured.expert_device_cost)


def table_line(name: str, runner: Sequence[float | None], device_cost: Sequence[float | None],
               bare: Sequence[float | None], expert: Sequence[float | None],
               expert_device: Sequence[float | None]) -> str:
    """dev/exp divides device-busy rates on both sides (the expert's from --same-process only; n/a otherwise)."""
    # Each repeat's runner / expert ratio: on a shared CPU the spread between fresh processes is often larger than
    # the harness's cost, and the range shows it.
    paired = sorted(r / e for r, e in zip(runner, expert) if r and e)
    spread = f"  {paired[0]:.3f}-{paired[-1]:.3f}" if paired else ""
    runner_rate, device_rate, bare_rate = (statistics.median(present(v)) for v in (runner, device_cost, bare))
    expert_cell = f"{statistics.median(present(expert)):10.1f}" if any(expert) else f"{'n/a':>10s}"
    return (f"{name:12s} {runner_rate:10.1f} {device_rate:10.1f} {bare_rate:10.1f} {expert_cell}"
            f"  {ratio(runner, bare)} {ratio(device_cost, expert_device)} {ratio(runner, expert)}{spread}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="all")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--profile", default="quick", help="runner profile")
    parser.add_argument("--repeats", type=int, default=1, help="alternate the three measurements this many times")
    parser.add_argument("--data-args", default="{}", help="JSON: synthetic data instead of the default, e.g. "
                        '\'{"shape": [3, 224, 224], "num_classes": 1000, "num_samples": 2048, "batch_size": 256}\'')
    parser.add_argument("--same-process", action="store_true",
                        help="alternate the three in this one process on one module instead of fresh processes")
    parser.add_argument("--steps", type=int, default=100, help=argparse.SUPPRESS)
    for mode in ("bare", "expert"):  # child modes: print samples/s
        parser.add_argument(f"--{mode}", metavar="MODEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.data = json.loads(args.data_args)
    device = torch.device(args.device)
    keep_freed_host_memory()  # as every dnnbench run does: the three measurements share the host allocator
    if args.bare or args.expert:
        try:
            measure = bare_trainer_samples_per_s if args.bare else expert_samples_per_s
            print(measure(args.bare or args.expert, args.steps, device, args.data))
        except NeedsTrainer as exc:
            print(exc)
            sys.exit(NEEDS_TRAINER_EXIT)
        return
    names = lightning_modules.names() if args.models == "all" else args.models.split(",")
    where = "in this process, one module" if args.same_process else "fresh processes"
    print(f"device {args.device}, profile {args.profile}, {args.repeats} alternating repeat(s) ({where}), medians; "
          "samples/s")
    print(f"{'model':12s} {'runner':>10s} {'run.device':>10s} {'bare':>10s} {'expert':>10s}  "
          f"{'run/bare':>6s} {'dev/exp':>6s} {'run/exp':>6s}  run/exp of each repeat (min-max)")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            try:
                measure_line = measure_in_one_process if args.same_process else measure_model
                print(measure_line(name, args, Path(tmp)), flush=True)
            except RuntimeError as exc:
                print(f"{name:12s} failed: {exc}", flush=True)


if __name__ == "__main__":
    main()
