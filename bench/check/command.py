"""`dnnbench check [--devices cpu,cuda]`: is this machine fit to benchmark on, and does the harness add nothing here?
(step: the machine, its GPUs (NVML) and a short harness probe -> one table of ✓ / ⚠ / ✗ lines and an exit code).

The machine and each GPU: load, busy processes, CPU governor and turbo, cores, memory, versions; persistence,
clocks, throttling, power, temperature, ECC, MIG, other processes (bench/check/machine.py). The harness: one model
launched the way real runs are (forked from the warm server into a run's child), where the runner's own speed
window, a bare Lightning Trainer and an expert plain loop alternate on the same resident batches three times
(bench/run/overhead.py): the two ratios (host clocks for the Trainer loops, device-busy time for the model cost) and
the spread of the repeats. Every ⚠ says what to do about it.

Exit codes: 0 fit; 1 a line that makes numbers unreliable (other busy processes, a throttling or shared GPU, a
lowered power limit, a harness ratio or spread off its bar, a failed probe); 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.check.machine import BAD, OK, Line, all_gpu_lines, machine_lines, warn

NAME, HELP = "check", "is this machine fit to benchmark on, and does the harness add nothing here"
PROBE_LIMIT_S = 60.0  # the probe's time limit per device
PROBE_REPEATS = 3
PROBE_MODEL = {"cpu": "mlp", "cuda": "cnn"}  # the probe fits its device's time budget (mlp: ~2 ms steps on 2 cores)
RATIO_LIMIT = {"cpu": 0.90, "cuda": 0.95}  # Trainer loop / bare Trainer and model cost / expert loop
SPREAD_LIMIT = {"cpu": 0.15, "cuda": 0.05}  # (max - min) / median of the runner's three repeats


# ----------------------------------------------------------------------------------------------- the harness
def run_probe(config, out_dir: Path, repeats: int = PROBE_REPEATS):
    """(the child's row, its Overhead or None): the probe launched like a real run (warm server, a run's child, its
    time limit), the child alternating the three measurements `repeats` times (bench/run/overhead.py)."""
    from bench.launch import child_process as launch
    from bench.run.overhead import Overhead

    row = launch.run_child(config, out_dir, probe_repeats=repeats)  # the child probes instead of training
    return row, Overhead(**row.probe) if row.status == "ok" and row.probe is not None else None


def probe_lines(device: str, model: str, out_dir: Path, repeats: int = PROBE_REPEATS) -> list[Line]:
    """The harness probe's lines on `device`: throughputs, the two ratios against their bars, the spread."""
    from bench.run.overhead import runner_config

    what = f"harness on {device} ({model}, {repeats} repeats)"
    row, measured = run_probe(runner_config(model, "quick", device, {}, time_limit_s=PROBE_LIMIT_S), out_dir,
                              repeats)
    if measured is None and row.status == "timeout":
        return [Line(BAD, what, f"probe timeout: {row.message}"[:300], "the machine is too busy or too "
                     "slow for the probe: stop other work, or probe a smaller model (--probe-model)", True)]
    if measured is None:
        return [Line(BAD, what, f"probe {row.status}: {row.message}"[:300], f"real runs of "
                     f"{model} will fail the same way: dnnbench run --models {model} --devices {device} --profile "
                     "smoke keeps its log in the sweep folder's runs/", True)]
    lines = [Line(OK, what, f"samples/s: runner {fmt(median(measured.runner))}, bare Trainer "
                  f"{fmt(median(measured.bare))}, expert loop {fmt(median(measured.expert))}, runner device cost "
                  f"{fmt(median(measured.device_cost))}")]
    if row.get("noise_warning"):
        lines.append(warn(f"{device} probe shared the machine", row.get("noise_warning"), "stop the other work and "
                          "check again"))
    limit = RATIO_LIMIT[device]
    for name, value, advice in (
            ("Trainer loop / bare Trainer", measured.runner_over_bare(), "the runner's loop costs more than "
             "Lightning's here: report it (python -m benchmarks.overhead --same-process shows every model)"),
            ("model cost / expert loop", measured.device_over_expert(), "the runner's steps keep the device "
             "busier than a plain loop's same steps (device-busy time on both sides): report it")):
        if value is None:
            lines.append(Line(OK, name, "n/a (no expert loop for this model)"))
        else:
            lines.append(Line(OK, name, f"{value:.3f} (bar >= {limit})") if value >= limit
                         else warn(name, f"{value:.3f} (bar >= {limit})", advice))
    spread, spread_limit = measured.spread(), SPREAD_LIMIT[device]
    found = f"{spread:.1%} (max - min over median of {repeats}; bar <= {spread_limit:.0%})" if spread is not None \
        else "n/a"
    lines.append(warn("spread of repeats", found, "the same measurement varies: lock GPU clocks (nvidia-smi -lgc), "
                      "stop other work, set the CPU governor to performance")
                 if spread is not None and spread > spread_limit else Line(OK, "spread of repeats", found))
    return lines


def median(values: list) -> float | None:
    import statistics

    present = [v for v in values if v]
    return statistics.median(present) if present else None


def fmt(value: float | None) -> str:
    from bench.core.columns import number

    return number(value) if value is not None else "n/a"


# ----------------------------------------------------------------------------------------------- the table
WIDTH = 34  # of the "what" column


def render(lines: list[Line]) -> str:
    """The lines of the table (each ⚠ / ✗ with its advice below it)."""
    return "\n".join(f"{line.mark} {line.what:<{WIDTH}}  {line.found}" + (f"\n  {' ' * WIDTH}  → {line.advice}"
                                                                         if line.advice else "") for line in lines)


def verdict(lines: list[Line]) -> str:
    unreliable = [line for line in lines if line.unreliable]
    return (f"dnnbench check: {len(unreliable)} line(s) make numbers from this machine unreliable (exit 1)"
            if unreliable else "dnnbench check: fit to benchmark (exit 0)")


def parse_devices(text: str) -> list[str]:
    import torch

    devices = []
    for device in (d.strip() for d in text.split(",") if d.strip()):
        if device == "auto":
            devices += ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        elif device in ("cpu", "cuda"):
            devices.append(device)
        else:
            raise ValueError(f"unknown device {device!r} (cpu, cuda or auto)")
    if not devices:
        raise ValueError("no device given")
    return list(dict.fromkeys(devices))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", default="auto", help="comma list of cpu, cuda, auto (cpu plus cuda where "
                        "present)")
    parser.add_argument("--probe-model", default=None, help="model the harness probe runs (default: "
                        + ", ".join(f"{m} on {d}" for d, m in PROBE_MODEL.items()) + ")")
    parser.add_argument("--probe-repeats", type=int, default=PROBE_REPEATS, help="alternating repeats of the probe "
                        "(their spread is judged)")
    parser.add_argument("--no-probe", action="store_true", help="skip the harness probe (machine and GPUs only)")


def main(args: argparse.Namespace) -> int:
    try:
        if args.probe_repeats < 1:
            raise ValueError(f"--probe-repeats takes a whole number of at least 1; got {args.probe_repeats}")
        devices = parse_devices(args.devices)
        if args.probe_model:
            import lightning_modules

            lightning_modules.get(args.probe_model)
    except (ValueError, KeyError) as exc:  # ConfigError is a ValueError
        print(f"dnnbench check: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    print(f"dnnbench check: devices {', '.join(devices)}", flush=True)
    lines = machine_lines() + (all_gpu_lines() if "cuda" in devices else [])
    print(render(lines), flush=True)  # the probe takes a while: show what is known now
    if not args.no_probe:
        from bench.launch.warm_client import stop_warm_server

        with tempfile.TemporaryDirectory(prefix="dnnbench-check-") as tmp:
            try:
                for device in devices:
                    if device == "cuda" and any(line.mark == BAD and line.what == "GPU" for line in lines):
                        continue  # no CUDA device: said above
                    probed = probe_lines(device, args.probe_model or PROBE_MODEL[device], Path(tmp),
                                         args.probe_repeats)
                    print(render(probed), flush=True)
                    lines += probed
            finally:
                stop_warm_server()
    print(verdict(lines))
    return 1 if any(line.unreliable for line in lines) else 0
