"""Energy counters and the GPU sampler (step: NVML's and RAPL's cumulative counters, and NVML's SM clock, throttle
reasons and power polled on a thread -> the readings bench/run/measure/energy.py turns into the row's energy columns).

Energy comes from cumulative counters read at window ends, never from sampled power: NVML's
`nvmlDeviceGetTotalEnergyConsumption` (mJ since the driver loaded; Volta and newer) on cuda rows, RAPL's package
counters (`/sys/class/powercap/intel-rapl:N/energy_uj`, which wrap at `max_energy_range_uj`) on cpu rows. Clocks,
throttle reasons and sampled power come from a thread that polls NVML while the speed window runs (NVML queries do
not synchronise the CUDA stream). The throttle-reason names are shared with `dnnbench check` (bench/check/machine.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

from bench.run.measure.nvml_calls import CLOCK_EVENT_REASONS, newest

RAPL_ROOT = Path("/sys/class/powercap")
SAMPLE_S = 0.1  # NVML polling period for clocks, throttle reasons and power during the speed window
# NVML clock-event (throttle) reason bits; gpu_idle shows between steps and is not a slowdown.
THROTTLE_REASONS = {0x1: "gpu_idle", 0x2: "applications_clocks", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
                    0x10: "sync_boost", 0x20: "sw_thermal", 0x40: "hw_thermal", 0x80: "hw_power_brake",
                    0x100: "display_clocks"}
SLOWDOWNS = 0x4 | 0x8 | 0x20 | 0x40 | 0x80  # the reasons that make a benchmark's clock lower than it could be


def reason_names(mask: int) -> list[str]:
    return [name for bit, name in THROTTLE_REASONS.items() if mask & bit]


def throttle_mask(nvml, handle) -> int:
    """Active clock-event reasons (NVML renamed "throttle" to "clocks event" in r535; older libraries and drivers
    have only the old name)."""
    return int(newest(nvml, CLOCK_EVENT_REASONS, handle))


def rapl_packages(root: Path | None = None) -> tuple[list[Path], str]:
    """The package-level RAPL zones (`intel-rapl:N`, not their `:N:M` sub-zones), or none and the reason."""
    root = root or RAPL_ROOT
    zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    if not zones:
        return [], f"no RAPL counters ({root}/intel-rapl:* absent: a VM or a CPU without RAPL)"
    try:
        for zone in zones:
            int((zone / "energy_uj").read_text())
    except (OSError, ValueError) as exc:
        return [], (f"RAPL not readable ({exc.__class__.__name__}; since Linux 5.10 energy_uj is root-only: "
                    f"sudo chmod a+r {root}/intel-rapl:*/energy_uj)")
    return zones, ""


class RaplCounter:
    """Joules of the CPU packages since an arbitrary origin, each package's wrap-around undone between reads."""

    source = "rapl"

    def __init__(self, zones: list[Path]) -> None:
        self.zones = zones
        self.ranges = [int((z / "max_energy_range_uj").read_text()) for z in zones]
        self.last = [self._raw(z) for z in zones]
        self.total_uj = 0

    @staticmethod
    def _raw(zone: Path) -> int:
        return int((zone / "energy_uj").read_text())

    def joules(self) -> float:
        for i, zone in enumerate(self.zones):
            now = self._raw(zone)
            step = now - self.last[i]
            self.total_uj += step if step >= 0 else step + self.ranges[i]  # wrapped since the last read
            self.last[i] = now
        return self.total_uj / 1e6


class NvmlCounter:
    """Joules of the run's GPUs from NVML's cumulative counter (summed over a DDP run's devices)."""

    source = "nvml"

    def __init__(self, nvml, handles: list) -> None:
        self.nvml, self.handles = nvml, handles
        self.joules()  # raises NVMLError_NotSupported where the GPU has no counter

    def joules(self) -> float:
        return sum(self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self.handles) / 1e3


def open_nvml(indices: list[int | str]):
    """(pynvml module, handles) for the GPUs as CUDA_VISIBLE_DEVICES names them; NVML stays initialised for the run
    (the process exits after one run)."""
    import pynvml

    pynvml.nvmlInit()
    return pynvml, [pynvml.nvmlDeviceGetHandleByIndex(i) if isinstance(i, int) else
                    pynvml.nvmlDeviceGetHandleByUUID(i) for i in indices]


class GpuSampler:
    """Polls SM clock, throttle reasons and power of the GPUs from start() to stop() on a thread."""

    def __init__(self, nvml, handles: list) -> None:
        self.nvml, self.handles = nvml, handles
        self.clocks: list[float] = []
        self.powers: list[float] = []
        self.mask = 0
        self.start_clock: float | None = None
        self.end_clock: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> float:
        clock = min(self.nvml.nvmlDeviceGetClockInfo(h, self.nvml.NVML_CLOCK_SM) for h in self.handles)
        for handle in self.handles:
            self.mask |= throttle_mask(self.nvml, handle)
            try:
                self.powers.append(self.nvml.nvmlDeviceGetPowerUsage(handle) / 1e3)
            except Exception:
                pass
        self.clocks.append(float(clock))
        return float(clock)

    def _poll(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            try:
                self.sample()
            except Exception:
                return

    def start(self) -> None:
        self.start_clock = self.sample()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.end_clock = self.sample()
