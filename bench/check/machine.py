"""The check's machine and GPU lines (step: this machine's load, busy processes, CPU governor and turbo, cores,
memory and versions, and each GPU's state as NVML reports it -> the ✓ / ⚠ / ✗ lines of `dnnbench check`).

Each GPU: persistence mode, SM and memory clocks against their maxima, active throttle reasons, power against its
limit and default limit, temperature, ECC, MIG, other processes. A query a GPU or driver does not support is a ✓
saying so. bench/check/command.py adds the harness probe's lines, renders the table and sets the exit code.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

OK, WARN, BAD = "✓", "⚠", "✗"
BUSY_SAMPLE_S = 2.0  # how long other processes' CPU use is watched before the verdict
# Other processes using this many cores now (or 10 % of the machine, if more) make CPU numbers unreliable: an idle
# machine's daemons stay far below half a core; one process keeping a core busy is well above.
BUSY_CORES_LIMIT = 0.5
HOT_C = 85  # GPU temperature (at rest) from which clocks are likely to drop under load


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
    """Other processes' CPU use over a short sample, this process's own tree (and its parents) left out: the total
    from the machine's own accounting, as the runs' noise check takes it (short-lived processes included), the
    per-process snapshots only to name the busiest."""
    from bench.run.measure.noise import (
        BUSY_CORES,
        OwnClock,
        busy_cpu_seconds,
        cpu_snapshot,
        other_cores,
        other_process_cores,
        own_pids,
    )

    cores, ours = os.cpu_count() or 1, OwnClock()
    start, busy_start, ours_start, started = cpu_snapshot(), busy_cpu_seconds(None), ours.read(), time.monotonic()
    time.sleep(sample_s)
    seconds = time.monotonic() - started
    used = other_process_cores(start, cpu_snapshot(), own_pids(), seconds)
    total = other_cores(busy_cpu_seconds(None) - busy_start, ours.read() - ours_start, seconds)
    named = [(name, c) for name, c in sorted(used.items(), key=lambda item: -item[1])[:3] if c >= 0.05]
    found = f"{total:.2f} of {cores} cores used by other processes" + (
        " (" + ", ".join(f"{name} {c:.2f}" for name, c in named) + ")" if named else "")
    if total >= max(BUSY_CORES_LIMIT, 0.1 * cores):
        pids = " ".join(name.rsplit("(", 1)[1].rstrip(")") for name, c in named if c >= BUSY_CORES)
        what = f"e.g. kill {pids}" if pids else "short-lived processes: no single one to name"
        return warn("busy processes now", found, f"stop them before benchmarking ({what}), or expect "
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

    from bench.run.environment import cpu_model, gpu_driver

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
        except Exception as exc:  # a bug of ours or a library unlike any we know: said, and the other lines go on
            lines.append(warn(f"{gpu} {what}", f"the check failed: {type(exc).__name__}: {exc}".splitlines()[0],
                              "report it with `pip show nvidia-ml-py` and nvidia-smi's driver version",
                              unreliable=False))
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
    from bench.run.measure.energy_counters import SLOWDOWNS, reason_names, throttle_mask

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
    from bench.run.measure.nvml_calls import running_processes

    others = sorted({p.pid for p in running_processes(nvml, handle)} - ours)
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
    from bench.run.measure.noise import own_pids

    try:
        return [line for index in range(pynvml.nvmlDeviceGetCount()) for line in gpu_lines(pynvml, index,
                                                                                             own_pids())]
    except Exception as exc:  # the GPU count, a handle or a name: no GPU lines without them
        return [Line(BAD, "GPU (NVML)", f"query failed: {type(exc).__name__}: {exc}".splitlines()[0],
                     "nvidia-smi -q shows the GPU's state", True)]
    finally:
        pynvml.nvmlShutdown()
