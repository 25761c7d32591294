"""NVML queries across library and driver versions (step: a pynvml module and a GPU handle -> the answer the newest
name both the installed nvidia-ml-py and the driver have gives).

nvidia-ml-py adds versioned names (`..._v2`, `..._v3`) and renames others (r535: "clocks throttle reasons" became
"clocks event reasons"); the library a user has may lack a new name, and a driver older than the library lacks its
symbol (NVMLError_FunctionNotFound, or NVMLLibraryMismatchError from an unversioned name that maps to a newer one).
Each query here tries the names newest first and takes the first that answers.
"""

from __future__ import annotations

# Newest first. nvidia-ml-py 11.450 has only the unversioned names; 11.5xx adds `_v2`; 12.x/13.x add `_v3` (and map
# the unversioned name to it).
COMPUTE_PROCESSES = ("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2",
                     "nvmlDeviceGetComputeRunningProcesses")
GRAPHICS_PROCESSES = ("nvmlDeviceGetGraphicsRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v2",
                      "nvmlDeviceGetGraphicsRunningProcesses")
CLOCK_EVENT_REASONS = ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons")


def newest(nvml, names: tuple[str, ...], *args):
    """The answer of the first of `names` that this library has and this driver implements; the last refusal (or
    NVMLError_FunctionNotFound when the library has none of them) where none does."""
    refusals = tuple(getattr(nvml, name) for name in ("NVMLError_FunctionNotFound", "NVMLLibraryMismatchError")
                     if hasattr(nvml, name))
    refused: Exception = nvml.NVMLError_FunctionNotFound()
    for name in names:
        query = getattr(nvml, name, None)
        if query is None:
            continue
        try:
            return query(*args)
        except refusals as exc:
            refused = exc
    raise refused


def running_processes(nvml, handle) -> list:
    """The compute and graphics processes on one GPU (objects with a `pid`)."""
    return [*newest(nvml, COMPUTE_PROCESSES, handle), *newest(nvml, GRAPHICS_PROCESSES, handle)]


def compute_processes(nvml, handle) -> list:
    return list(newest(nvml, COMPUTE_PROCESSES, handle))
