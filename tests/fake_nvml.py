"""A fake NVML built from the installed nvidia-ml-py's own surface: `create_autospec(pynvml, spec_set=True)`, so a
name the library lacks is an AttributeError and a call with the wrong arguments a TypeError, as on a real GPU host.
Constants and the NVMLError classes are the real ones (a mock class cannot be caught); each query answers what one
H100-like GPU would, and each keyword argument changes one fact."""

from __future__ import annotations

from unittest import mock

import pynvml

H100 = "NVIDIA H100 80GB HBM3"


def real_values(fake) -> None:
    """The library's constants and exception classes copied onto the fake."""
    for name in dir(pynvml):
        value = getattr(pynvml, name)
        if isinstance(value, (int, float, str, bytes)) or (isinstance(value, type) and issubclass(value, Exception)):
            setattr(fake, name, value)


def processes(pids) -> list:
    """What the running-processes queries return: nvidia-ml-py's own friendly objects."""
    return [pynvml.nvmlFriendlyObject({"pid": pid, "usedGpuMemory": 2**30}) for pid in pids]


def fake_nvml(name: str = H100, persistence: int = 1, sm=(1980, 1980), mem=(2619, 2619), mask=0,
              power=(70_000, 700_000, 700_000), temperature: int = 35, mig: int = 0, pids=(), energy_mj=(0,)):
    """One GPU. `energy_mj`: successive readings of the energy counter (the last one repeats)."""
    nvml = mock.create_autospec(pynvml, spec_set=True)
    real_values(nvml)
    clocks = {(pynvml.NVML_CLOCK_SM, False): sm[0], (pynvml.NVML_CLOCK_SM, True): sm[1],
              (pynvml.NVML_CLOCK_MEM, False): mem[0], (pynvml.NVML_CLOCK_MEM, True): mem[1]}
    readings = list(energy_mj)
    nvml.nvmlDeviceGetCount.return_value = 1
    nvml.nvmlDeviceGetHandleByIndex.side_effect = lambda index: f"handle{index}"
    nvml.nvmlDeviceGetHandleByUUID.side_effect = lambda uuid: uuid
    nvml.nvmlDeviceGetName.return_value = name
    nvml.nvmlDeviceGetPersistenceMode.return_value = persistence
    nvml.nvmlDeviceGetClockInfo.side_effect = lambda handle, kind: clocks[(kind, False)]
    nvml.nvmlDeviceGetMaxClockInfo.side_effect = lambda handle, kind: clocks[(kind, True)]
    masks = list(mask) if isinstance(mask, (list, tuple)) else [mask]
    nvml.nvmlDeviceGetCurrentClocksEventReasons.side_effect = lambda handle: masks.pop(0) if len(masks) > 1 \
        else masks[0]
    nvml.nvmlDeviceGetPowerUsage.return_value = power[0]
    nvml.nvmlDeviceGetEnforcedPowerLimit.return_value = power[1]
    nvml.nvmlDeviceGetPowerManagementDefaultLimit.return_value = power[2]
    nvml.nvmlDeviceGetTemperature.return_value = temperature
    nvml.nvmlDeviceGetEccMode.return_value = [1, 1]
    nvml.nvmlDeviceGetMigMode.return_value = [mig, mig]
    for kind in ("Compute", "Graphics"):
        for suffix in ("", "_v2", "_v3"):
            getattr(nvml, f"nvmlDeviceGet{kind}RunningProcesses{suffix}").side_effect = (
                lambda handle, listed=pids if kind == "Compute" else (): processes(listed))
    nvml.nvmlDeviceGetTotalEnergyConsumption.side_effect = lambda handle: readings.pop(0) if len(readings) > 1 \
        else readings[0]
    return nvml


def refuse(query, error=pynvml.NVMLError_NotSupported) -> None:
    """The GPU or driver answers `query` (a fake's method) with an NVML error."""
    query.side_effect = error()
