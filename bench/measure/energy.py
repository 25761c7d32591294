"""Energy and machine state (step: the cumulative energy counters and the GPU's clocks and throttle reasons over the
speed window, inference and the quality run -> the row's energy columns).

Energy comes from cumulative counters read at window ends, never from sampled power: NVML's
`nvmlDeviceGetTotalEnergyConsumption` (mJ since the driver loaded; Volta and newer) on cuda rows, RAPL's package
counters (`/sys/class/powercap/intel-rapl:N/energy_uj`, which wrap at `max_energy_range_uj`) on cpu rows. A
counter covers a whole GPU or CPU package, so where other work shares it the cells stay empty with the reason.
Clocks, throttle reasons and sampled power come from a thread that polls NVML while the speed window runs (NVML
queries do not synchronise the CUDA stream). Nothing here raises: a failure leaves empty cells and a note.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch

from bench.measure import Columns
from bench.measure.speed import batch_size_of, synchronize

RAPL_ROOT = Path("/sys/class/powercap")
SAMPLE_S = 0.1  # NVML polling period for clocks, throttle reasons and power during the speed window
INFERENCE_ENERGY_S = 0.5  # back-to-back inference calls metered for at least this long (counters tick every ~10 ms+)
# NVML clock-event (throttle) reason bits; gpu_idle shows between steps and is not a slowdown.
THROTTLE_REASONS = {0x1: "gpu_idle", 0x2: "applications_clocks", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
                    0x10: "sync_boost", 0x20: "sw_thermal", 0x40: "hw_thermal", 0x80: "hw_power_brake",
                    0x100: "display_clocks"}
SLOWDOWNS = 0x4 | 0x8 | 0x20 | 0x40 | 0x80  # the reasons that make a benchmark's clock lower than it could be


def reason_names(mask: int) -> list[str]:
    return [name for bit, name in THROTTLE_REASONS.items() if mask & bit]


def throttle_mask(nvml, handle) -> int:
    """Active clock-event reasons (NVML renamed "throttle" to "clocks event" in r535; older drivers have the old)."""
    read = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
        nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(read(handle))


@dataclass(frozen=True)
class Energy(Columns):
    """The machine's state over the run's timed windows and the energy they took."""

    sm_clock_start_mhz: float | None = None
    sm_clock_end_mhz: float | None = None
    sm_clock_min_mhz: float | None = None
    throttle_reasons: str = ""
    power_mean_w: float | None = None
    train_joules_per_sample: float | None = None
    infer_joules_per_sample: float | None = None
    energy_to_target_j: float | None = None
    energy_source: str = ""
    energy_note: str = ""


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


class WindowEnergy(L.Callback):
    """Reads the counter where the speed window starts and where its timing is done (both right after the window
    synchronised the device); goes after the SpeedWindow in the callback list."""

    def __init__(self, run: RunEnergy, window) -> None:
        self.run, self.window = run, window
        self.start_j: float | None = None
        self.seconds = 0.0
        self.done = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:

        if self.start_j is None and self.window.steps == self.window.warmup:
            self.start_j, self._started = self.run.read(), time.perf_counter()
            self.run.start_sampling()
        elif self.start_j is not None and not self.done and self.window.timing_done:
            self.finish()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Small data: an epoch's end can be where the window's timing is done."""
        if self.start_j is not None and not self.done and self.window.timing_done:
            self.finish()

    def on_train_end(self, trainer, pl_module) -> None:
        """A window cut short by the fit's end (the smoke profile's few steps): its closed sub-windows count."""
        if self.start_j is not None and not self.done:
            self.finish()

    def finish(self) -> None:
        self.done = True
        end_j, self.seconds = self.run.read(), time.perf_counter() - self._started
        self.run.stop_sampling()
        samples = sum(n for _, n, _ in self.window.windows)
        if end_j is not None and self.start_j is not None and samples:
            self.run.values["train_joules_per_sample"] = (end_j - self.start_j) / samples
            self.run.values["power_mean_w"] = (end_j - self.start_j) / self.seconds if self.seconds else None


class TargetEnergy(L.Callback):
    """Energy from the start of training until the quality metric first reached its target (the QualityWatch's
    time-to-target, read right after it synchronised the device); goes after the watch in the callback list."""

    def __init__(self, run: RunEnergy, watch) -> None:
        self.run, self.watch = run, watch
        self.start_j: float | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.start_j = self.run.read()

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.start_j is None or self.watch.time_to_target is None or "energy_to_target_j" in self.run.values:
            return
        end_j = self.run.read()
        if end_j is not None:
            self.run.values["energy_to_target_j"] = end_j - self.start_j


class RunEnergy:
    """One run's energy meter: the counter for its device (or the reason it has none), the GPU sampler, the
    callbacks that read them and the row's Energy columns. Every read is guarded: a failure becomes a note."""

    def __init__(self, device: str, num_devices: int = 1, num_nodes: int = 1) -> None:
        self.device, self.num_devices = device, num_devices
        self.counter: NvmlCounter | RaplCounter | None = None
        self.sampler: GpuSampler | None = None
        self.values: dict[str, Any] = {}
        self.notes: list[str] = []
        try:
            self._open(device, num_devices, num_nodes)
        except Exception as exc:
            self.notes.append(f"energy not measured: {exc}".splitlines()[0])

    def _open(self, device: str, num_devices: int, num_nodes: int) -> None:
        if device == "cuda":
            from bench.measure.noise import gpu_indices

            nvml, handles = open_nvml(gpu_indices(num_devices))
            self.sampler = GpuSampler(nvml, handles)
            if num_nodes > 1:
                self.notes.append("energy not measured: the other nodes' GPUs are not readable from here")
                return
            try:
                self.counter = NvmlCounter(nvml, handles)
            except nvml.NVMLError_NotSupported:
                self.notes.append("energy not measured: this GPU has no energy counter (NVML "
                                  "nvmlDeviceGetTotalEnergyConsumption: Not Supported; Volta and newer have one)")
            return
        zones, reason = rapl_packages()
        if reason:
            self.notes.append(f"energy not measured: {reason}")
        elif os.environ.get("DNNBENCH_CPUS"):
            self.notes.append("energy not measured: runs share the CPU package (--parallel) and RAPL counts the "
                              "whole package")
        else:
            self.counter = RaplCounter(zones)

    def read(self) -> float | None:
        if self.counter is None:
            return None
        try:
            return self.counter.joules()
        except Exception as exc:
            self.notes.append(f"energy read failed: {exc}".splitlines()[0])
            self.counter = None
            return None

    def start_sampling(self) -> None:
        self._guarded(lambda: self.sampler.start() if self.sampler else None)

    def stop_sampling(self) -> None:
        self._guarded(lambda: self.sampler.stop() if self.sampler else None)

    def _guarded(self, action) -> None:
        try:
            action()
        except Exception as exc:
            self.notes.append(f"GPU clock sampling failed: {exc}".splitlines()[0])
            self.sampler = None

    def over_window(self, window) -> WindowEnergy:
        return WindowEnergy(self, window)

    def to_target(self, watch) -> TargetEnergy:
        return TargetEnergy(self, watch)

    @torch.no_grad()
    def measure_inference(self, model: torch.nn.Module, args: tuple, device: torch.device, precision) -> None:
        """Joules per inference sample: back-to-back eval forward passes (as infer_samples_per_s times them) for at
        least INFERENCE_ENERGY_S, the counter read after the device finished. Costs nothing without a counter."""
        if self.counter is None:
            return
        try:
            self._meter_inference(model, args, device, precision)
        except Exception as exc:  # e.g. out of memory at the end of a run: the row keeps its other cells
            self.notes.append(f"inference energy failed: {exc}".splitlines()[0])

    def _meter_inference(self, model: torch.nn.Module, args: tuple, device: torch.device, precision) -> None:
        model.eval()
        with precision.autocast(device.type):
            synchronize(device)
            start_j, started, calls = self.read(), time.perf_counter(), 0
            while calls < 10 or time.perf_counter() - started < INFERENCE_ENERGY_S:
                model(*args)
                calls += 1
                if calls % 10 == 0:
                    synchronize(device)  # the host's clock and the device's work agree at the check
            synchronize(device)
            end_j = self.read()
        if start_j is not None and end_j is not None:
            self.values["infer_joules_per_sample"] = (end_j - start_j) / (calls * batch_size_of(args))

    def result(self) -> Energy:
        """The row's columns (a child later empties the energy cells if other processes shared the GPU)."""
        values, notes = dict(self.values), list(self.notes)
        sampler = self.sampler if self.sampler is not None and self.sampler.clocks else None
        if sampler is not None:
            values["sm_clock_start_mhz"], values["sm_clock_end_mhz"] = sampler.start_clock, sampler.end_clock
            values["sm_clock_min_mhz"] = min(sampler.clocks)
            values["throttle_reasons"] = ",".join(reason_names(sampler.mask & ~0x1)) or "none"
            if values.get("power_mean_w") is None and sampler.powers and self.counter is None:
                values["power_mean_w"] = sum(sampler.powers) / len(sampler.powers)  # sampled: no counter
        source = self.counter.source if self.counter is not None else ""
        return Energy(**values, energy_source=source, energy_note="; ".join(dict.fromkeys(notes)))


ENERGY_CELLS = ("train_joules_per_sample", "infer_joules_per_sample", "energy_to_target_j", "power_mean_w")


def unless_shared(row: dict[str, Any]) -> dict[str, Any]:
    """The row's energy cells emptied, with the reason, when other processes were on its GPU: NVML's counter covers
    the whole GPU (the foreign count comes from the run's noise check, bench/measure/noise.py)."""
    shared = row.get("foreign_gpu_processes")
    if not shared or row.get("energy_source") != "nvml":
        return {}
    note = f"energy not measured: {shared} other process(es) shared the GPU, whose counter covers them too"
    return dict.fromkeys(ENERGY_CELLS) | {"energy_note": "; ".join(filter(None, (row.get("energy_note"), note)))}
