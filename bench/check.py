"""`dnnbench check [--devices cpu,cuda]`: is this machine fit to benchmark on, and does the harness add nothing here?
(step: the machine, its GPUs (NVML) and a short harness probe -> one table of ✓ / ⚠ / ✗ lines and an exit code).

The machine: load average and the processes busy right now, CPU governor and turbo, cores, memory, versions. Each
GPU: persistence mode, SM and memory clocks against their maxima, active throttle reasons, power against its limit
and default limit, temperature, ECC, MIG, other processes. The harness: one model launched the way real runs are
(forked from the warm server into a run's child), where the runner's own speed window, a bare Lightning Trainer and
an expert plain loop alternate on the same resident batches three times (bench/overhead.py): the two ratios and
the spread of the repeats. Every ⚠ says what to do about it.

Exit codes: 0 fit; 1 a line that makes numbers unreliable (other busy processes, a throttling or shared GPU, a
lowered power limit, a harness ratio or spread off its bar, a failed probe); 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NAME, HELP = "check", "is this machine fit to benchmark on, and does the harness add nothing here"
OK, WARN, BAD = "✓", "⚠", "✗"
BUSY_SAMPLE_S = 2.0  # how long other processes' CPU use is watched before the verdict
# Other processes using this many cores now (or 10 % of the machine, if more) make CPU numbers unreliable: an idle
# machine's daemons stay far below half a core; one process keeping a core busy is well above.
BUSY_CORES_LIMIT = 0.5
HOT_C = 85  # GPU temperature (at rest) from which clocks are likely to drop under load
PROBE_LIMIT_S = 60.0  # the probe's time limit per device
PROBE_REPEATS = 3
PROBE_MODEL = {"cpu": "mlp", "cuda": "cnn"}  # the probe fits its device's time budget (mlp: ~2 ms steps on 2 cores)
RATIO_LIMIT = {"cpu": 0.90, "cuda": 0.95}  # Trainer loop / bare Trainer and model cost / expert loop
SPREAD_LIMIT = {"cpu": 0.15, "cuda": 0.05}  # (max - min) / median of the runner's three repeats


@dataclass(frozen=True)
class Line:
    """One line of the table: a mark, what was checked, what was found and, for a ⚠ / ✗, what to do."""

    mark: str
    what: str
    found: str
    advice: str = ""
    unreliable: bool = False  # makes the numbers from this machine unreliable: exit code 1


def warn(what: str, found: str, advice: str, unreliable: bool = True) -> Line:
    return Line(WARN, what, found, advice, unreliable)


def read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


# ----------------------------------------------------------------------------------------------- the machine
def load_line() -> Line:
    cores = os.cpu_count() or 1
    one, five, fifteen = os.getloadavg()
    found = f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {cores} cores"
    if one > 0.5 * cores:  # a trailing average: the busy-now line below decides
        return warn("load average", found, "recent load; if the next line is ✓ it has ended", unreliable=False)
    return Line(OK, "load average", found)


def busy_line(sample_s: float = BUSY_SAMPLE_S) -> Line:
    """Other processes' CPU use over a short sample, this process's own tree (and its parents) left out."""
    from bench.measure.noise import BUSY_CORES, cpu_snapshot, other_process_cores, own_pids

    cores = os.cpu_count() or 1
    start, started = cpu_snapshot(), time.monotonic()
    time.sleep(sample_s)
    used = other_process_cores(start, cpu_snapshot(), own_pids(), time.monotonic() - started)
    total = sum(used.values())
    top = sorted(used.items(), key=lambda item: -item[1])[:3]
    found = f"{total:.2f} of {cores} cores used by other processes" + (
        " (" + ", ".join(f"{name} {c:.2f}" for name, c in top if c >= 0.05) + ")" if top else "")
    if total >= max(BUSY_CORES_LIMIT, 0.1 * cores):
        pids = " ".join(name.rsplit("(", 1)[1].rstrip(")") for name, c in top if c >= BUSY_CORES)
        return warn("busy processes now", found, f"stop them before benchmarking (e.g. kill {pids}), or expect "
                    "noise_warning on every row")
    return Line(OK, "busy processes now", found)


def governor_lines() -> list[Line]:
    """CPU frequency governor and turbo, where Linux exposes them (not inside most VMs)."""
    governors = {value for p in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor")
                 if (value := read(p)) is not None}
    if not governors:
        lines = [Line(OK, "CPU governor", "not exposed here (a VM or container: the host decides)")]
    elif governors == {"performance"}:
        lines = [Line(OK, "CPU governor", "performance")]
    else:
        lines = [warn("CPU governor", ", ".join(sorted(governors)), "clocks ramp with load: sudo cpupower "
                      "frequency-set -g performance", unreliable=False)]
    no_turbo, boost = read("/sys/devices/system/cpu/intel_pstate/no_turbo"), read(
        "/sys/devices/system/cpu/cpufreq/boost")
    turbo_on = no_turbo == "0" or boost == "1"
    if no_turbo is None and boost is None:
        lines.append(Line(OK, "CPU turbo", "not exposed here"))
    elif turbo_on:
        lines.append(warn("CPU turbo", "on", "clocks depend on temperature and on how many cores are busy; for "
                          "steadier CPU numbers: echo 1 | sudo tee /sys/devices/system/cpu/intel_pstate/no_turbo "
                          "(or 0 > .../cpufreq/boost)", unreliable=False))
    else:
        lines.append(Line(OK, "CPU turbo", "off"))
    return lines


def machine_lines(sample_s: float = BUSY_SAMPLE_S) -> list[Line]:
    import lightning
    import psutil
    import torch

    from bench.environment import cpu_model, gpu_driver

    memory = psutil.virtual_memory()
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    versions = (f"python {sys.version.split()[0]}, torch {torch.__version__}, lightning {lightning.__version__}, "
                f"CUDA {torch.version.cuda or '-'}, cuDNN {cudnn or '-'}, driver {gpu_driver() or '-'}")
    return [load_line(), busy_line(sample_s), *governor_lines(),
            Line(OK, "cores and memory", f"{cpu_model()}: {psutil.cpu_count(logical=False) or '?'} cores, "
                 f"{psutil.cpu_count()} threads; {memory.total / 2**30:.1f} GiB, {memory.available / 2**30:.1f} "
                 "GiB free"),
            Line(OK, "versions", versions)]


# ----------------------------------------------------------------------------------------------- the GPUs
def gpu_lines(nvml, index: int, ours: set[int]) -> list[Line]:
    """The state of one GPU as NVML reports it; `ours`: pids that are not 'other processes'. A query this GPU or
    driver does not support is a ✓ saying so, not a failure."""
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = nvml.nvmlDeviceGetName(handle)
    gpu = f"GPU {index} ({name.decode() if isinstance(name, bytes) else name})"
    lines = []
    for what, line_of in (("persistence", persistence_line), ("clocks", clocks_line), ("throttling", throttle_line),
                          ("power", power_line), ("temperature", temperature_line), ("ECC", ecc_line),
                          ("MIG", mig_line), ("other processes", processes_line)):
        try:
            lines.append(line_of(nvml, handle, f"{gpu} {what}", index, ours))
        except nvml.NVMLError as exc:
            lines.append(Line(OK, f"{gpu} {what}", f"not readable here ({exc})"))
    return lines


def persistence_line(nvml, handle, what: str, index: int, ours: set[int]) -> Line:
    if nvml.nvmlDeviceGetPersistenceMode(handle) == 1:
        return Line(OK, what, "on")
    return warn(what, "off", f"sudo nvidia-smi -i {index} -pm 1 (else the driver re-initialises the GPU for every "
                "process)", unreliable=False)


def clocks_line(nvml, handle, what: str, index: int, ours: set[int]) -> Line:
    clocks = [(kind, nvml.nvmlDeviceGetClockInfo(handle, code), nvml.nvmlDeviceGetMaxClockInfo(handle, code))
              for kind, code in (("SM", nvml.NVML_CLOCK_SM), ("memory", nvml.NVML_CLOCK_MEM))]
    return Line(OK, what, ", ".join(f"{kind} {now} of {top} MHz" for kind, now, top in clocks)
                + " (low at rest; each row records its speed window's SM clock; to lock: sudo nvidia-smi "
                f"-i {index} -lgc {clocks[0][2]})")


def throttle_line(nvml, handle, what: str, index: int, ours: set[int]) -> Line:
    from bench.measure.energy import SLOWDOWNS, reason_names, throttle_mask

    mask = throttle_mask(nvml, handle) & SLOWDOWNS
    if mask:
        return warn(what, ", ".join(reason_names(mask)), "it is slowing down at rest: check cooling and power "
                    f"(nvidia-smi -i {index} -q -d PERFORMANCE)")
    return Line(OK, what, "none active")


def power_line(nvml, handle, what: str, index: int, ours: set[int]) -> Line:
    draw = nvml.nvmlDeviceGetPowerUsage(handle) / 1e3
    limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1e3
    default = nvml.nvmlDeviceGetPowerManagementDefaultLimit(handle) / 1e3
    found = f"{draw:.0f} W drawn, limit {limit:.0f} W, default limit {default:.0f} W"
    if limit < 0.95 * default:
        return warn(what, found, f"the power limit is lowered: sudo nvidia-smi -i {index} -pl {default:.0f}")
    return Line(OK, what, found)


def temperature_line(nvml, handle, what: str, index: int, ours: set[int]) -> Line:
    temperature = nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
    if temperature >= HOT_C:
        return warn(what, f"{temperature} °C", "hot before any load: check cooling")
    return Line(OK, what, f"{temperature} °C")


def ecc_line(nvml, handle, what: str, index: int, ours: set[int]) -> Line:
    """ECC on costs a little memory bandwidth and capacity: said next to the numbers, not a fault."""
    ecc, _ = nvml.nvmlDeviceGetEccMode(handle)
    return Line(OK, what, "on" if ecc else "off")


def mig_line(nvml, handle, what: str, index: int, ours: set[int]) -> Line:
    mig, _ = nvml.nvmlDeviceGetMigMode(handle)
    if mig:
        return warn(what, "on", f"runs see one slice while the peak tables assume the whole GPU: sudo nvidia-smi "
                    f"-i {index} -mig 0")
    return Line(OK, what, "off")


def processes_line(nvml, handle, what: str, index: int, ours: set[int]) -> Line:
    listed = [*nvml.nvmlDeviceGetComputeProcesses(handle), *nvml.nvmlDeviceGetGraphicsProcesses(handle)]
    others = sorted({p.pid for p in listed} - ours)
    if others:
        return warn(what, ", ".join(map(str, others)), "stop process " + ", ".join(map(str, others)) +
                    " (nvidia-smi shows what they are): they share the GPU and its energy counter")
    return Line(OK, what, "none")


def all_gpu_lines() -> list[Line]:
    import torch

    if not torch.cuda.is_available():
        return [Line(BAD, "GPU", "no CUDA device visible to torch", "check the driver and CUDA_VISIBLE_DEVICES",
                     True)]
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:
        return [Line(BAD, "GPU (NVML)", f"NVML not available ({exc})", "install the NVIDIA driver's NVML", True)]
    from bench.measure.noise import own_pids

    try:
        return [line for index in range(pynvml.nvmlDeviceGetCount()) for line in gpu_lines(pynvml, index,
                                                                                             own_pids())]
    except pynvml.NVMLError as exc:
        return [Line(BAD, "GPU (NVML)", f"query failed: {exc}", "nvidia-smi -q shows the GPU's state", True)]
    finally:
        pynvml.nvmlShutdown()


# ----------------------------------------------------------------------------------------------- the harness
def run_probe(config, out_dir: Path, repeats: int = PROBE_REPEATS):
    """(the child's row, its Overhead or None): the probe launched like a real run (warm server, a run's child, its
    time limit), the child alternating the three measurements `repeats` times (bench/overhead.py)."""
    from bench import launch
    from bench.overhead import PROBE_ENV, Overhead

    os.environ[PROBE_ENV] = str(repeats)  # the child probes instead of training (bench/child.py)
    try:
        row = launch.run_child(config, out_dir)
    finally:
        del os.environ[PROBE_ENV]
    ok = row.get("status") == "ok" and isinstance(row.get("overhead"), dict)
    return row, Overhead(**row["overhead"]) if ok else None


def probe_lines(device: str, model: str, out_dir: Path, repeats: int = PROBE_REPEATS) -> list[Line]:
    """The harness probe's lines on `device`: throughputs, the two ratios against their bars, the spread."""
    from bench.overhead import runner_config

    what = f"harness on {device} ({model}, {repeats} repeats)"
    row, measured = run_probe(runner_config(model, "quick", device, {}, time_limit_s=PROBE_LIMIT_S), out_dir,
                              repeats)
    if measured is None and row.get("status") == "timeout":
        return [Line(BAD, what, f"probe timeout: {row.get('message', '')}"[:300], "the machine is too busy or too "
                     "slow for the probe: stop other work, or probe a smaller model (--probe-model)", True)]
    if measured is None:
        return [Line(BAD, what, f"probe {row.get('status')}: {row.get('message', '')}"[:300], f"real runs of "
                     f"{model} will fail the same way: dnnbench run --models {model} --devices {device} --profile "
                     "smoke keeps its log in the sweep folder's runs/", True)]
    lines = [Line(OK, what, f"samples/s: runner {fmt(median(measured.runner))}, bare Trainer "
                  f"{fmt(median(measured.bare))}, expert loop {fmt(median(measured.expert))}, runner device cost "
                  f"{fmt(median(measured.device_cost))}")]
    if row.get("noise_warning"):
        lines.append(warn(f"{device} probe shared the machine", row["noise_warning"], "stop the other work and "
                          "check again"))
    limit = RATIO_LIMIT[device]
    for name, value, advice in (
            ("Trainer loop / bare Trainer", measured.runner_over_bare(), "the runner's loop costs more than "
             "Lightning's here: report it (python -m benchmarks.overhead --same-process shows every model)"),
            ("model cost / expert loop", measured.device_over_expert(), "the device-cost measure misses time a "
             "plain loop spends: compare device_samples_per_s only between rows of this machine")):
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
    from bench.columns import number

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
        from bench.warm_server import stop_warm_server

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
