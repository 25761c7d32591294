"""Energy and machine state (step: the cumulative energy counters and the GPU's clocks and throttle reasons over the
speed window, inference and the quality run -> the row's energy columns).

The counters (NVML's on cuda rows, RAPL's package counters on cpu rows) and the thread that polls the GPU's clocks,
throttle reasons and power are in bench/run/measure/energy_counters.py; here a listener of the speed window and
Lightning callbacks read them at the windows' ends and RunEnergy turns the readings into the Energy columns. A counter
covers a whole GPU or CPU package, so where other work shares it the cells stay empty with the reason. Nothing here
raises: a failure leaves empty cells and a note."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch

from bench.core.row import Columns
from bench.run.measure.energy_counters import (
    GpuSampler,
    NvmlCounter,
    RaplCounter,
    open_nvml,
    rapl_packages,
    reason_names,
)
from bench.run.measure.speed import batch_size_of, synchronize

INFERENCE_ENERGY_S = 1.0  # back-to-back inference calls metered at least this long: NVML samples power sparsely
# NVML's counter integrates power samples taken a fraction of the time (on A100/H100 about a quarter of it, Yang et
# al. 2023): energy over less than this many seconds of timed steps can be off by tens of percent, or read 0.
COUNTER_MIN_WINDOW_S = 1.0


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


class WindowEnergy:
    """Joules over the speed window's timed sub-windows: the counter is read where each opens and where it closes
    (the window has just synchronised the device), so what lies between them - validation, epoch ends, the quality
    fit's end and the next fit's warm-up - is left out. The GPU sampler runs from the first opening until the
    window's timing is done."""

    def __init__(self, run: RunEnergy, window) -> None:
        self.run, self.window = run, window
        self.joules = self.seconds = 0.0
        self._opened: tuple[float, float] | None = None  # (joules, perf_counter) where the open sub-window began
        self._sampling = self._sampled = False
        window.listeners.append(self)

    def opened(self) -> None:
        if not self._sampled:
            self._sampled = self._sampling = True
            self.run.start_sampling()
        joules = self.run.read()
        self._opened = None if joules is None else (joules, time.perf_counter())

    def closed(self) -> None:
        opened, self._opened = self._opened, None
        end_j = self.run.read() if opened is not None else None
        if opened is not None and end_j is not None:
            self.joules += end_j - opened[0]
            self.seconds += time.perf_counter() - opened[1]
            samples = self.window.timed_samples()  # (a paused sub-window's steps included)
            if samples:
                self.run.values["train_joules_per_sample"] = self.joules / samples
                self.run.values["power_mean_w"] = self.joules / self.seconds if self.seconds else None
        if self._sampling and self.window.timing_done:
            self.finish()

    def finish(self) -> None:
        """Stop the GPU sampler (at the window's end, or when the row is read)."""
        if self._sampling:
            self._sampling = False
            self.run.stop_sampling()


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
        self.window_meter: WindowEnergy | None = None
        try:
            self._open(device, num_devices, num_nodes)
        except Exception as exc:
            self.notes.append(f"energy not measured: {exc}".splitlines()[0])

    def _open(self, device: str, num_devices: int, num_nodes: int) -> None:
        if device == "cuda":
            from bench.run.measure.noise import gpu_indices

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
        """Meter `window` (a SpeedWindow: it tells the meter where its clock starts and stops)."""
        self.window_meter = WindowEnergy(self, window)
        return self.window_meter

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
        if self.window_meter is not None:
            self.window_meter.finish()  # a window cut short by its fit (smoke's few steps) leaves the sampler on
        values, notes = dict(self.values), list(self.notes)
        sampler = self.sampler if self.sampler is not None and self.sampler.clocks else None
        if sampler is not None:
            values["sm_clock_start_mhz"], values["sm_clock_end_mhz"] = sampler.start_clock, sampler.end_clock
            values["sm_clock_min_mhz"] = min(sampler.clocks)
            values["throttle_reasons"] = ",".join(reason_names(sampler.mask & ~0x1)) or "none"
            if values.get("power_mean_w") is None and sampler.powers and self.counter is None:
                values["power_mean_w"] = sum(sampler.powers) / len(sampler.powers)  # sampled: no counter
        source = self.counter.source if self.counter is not None else ""
        timed_s = self.window_meter.seconds if self.window_meter is not None else 0.0
        if source == "nvml" and 0 < timed_s < COUNTER_MIN_WINDOW_S:
            notes.append(f"train energy over {timed_s:.2f} s of timed steps: under {COUNTER_MIN_WINDOW_S:g} s NVML's "
                         "counter can be off by tens of percent (energy_to_target_j spans the fit)")
        return Energy(**values, energy_source=source, energy_note="; ".join(dict.fromkeys(notes)))


ENERGY_CELLS = ("train_joules_per_sample", "infer_joules_per_sample", "energy_to_target_j", "power_mean_w")


def unless_shared(row: dict[str, Any]) -> dict[str, Any]:
    """The row's energy cells emptied, with the reason, when other processes were on its GPU: NVML's counter covers
    the whole GPU (the foreign count comes from the run's noise check, bench/run/measure/noise.py)."""
    shared = row.get("foreign_gpu_processes")
    if not shared or row.get("energy_source") != "nvml":
        return {}
    note = f"energy not measured: {shared} other process(es) shared the GPU, whose counter covers them too"
    return dict.fromkeys(ENERGY_CELLS) | {"energy_note": "; ".join(filter(None, (row.get("energy_note"), note)))}
