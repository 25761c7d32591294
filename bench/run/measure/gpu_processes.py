"""Other processes on the run's GPUs (step: NVML -> the noise check's `foreign_gpu_processes`)."""

from __future__ import annotations

import os

from bench.run.measure.nvml_calls import compute_processes


def gpu_indices(num_devices: int) -> list[int | str]:
    """The GPUs a run uses, as NVML sees them: CUDA_VISIBLE_DEVICES entries (indices or UUIDs) or the first N."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    chosen = visible[:num_devices] if visible else list(range(num_devices))
    return [int(v) if isinstance(v, str) and v.isdigit() else v for v in chosen]


def gpu_process_pids(indices: list[int | str]) -> list[int] | None:
    """Pids of the compute processes on those GPUs (NVML); None where NVML cannot tell (no driver, MIG, ...)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        pids = []
        for index in indices:
            handle = (pynvml.nvmlDeviceGetHandleByIndex(index) if isinstance(index, int)
                      else pynvml.nvmlDeviceGetHandleByUUID(index))
            pids += [p.pid for p in compute_processes(pynvml, handle)]
        return pids
    except Exception:
        return None
    finally:
        pynvml.nvmlShutdown()


def foreign_gpu_count(pids: list[int] | None, ours: set[int], using_gpu: bool) -> int | None:
    """Processes on the run's GPUs that are not the run's. Inside a container NVML may report host pids, so when
    none of ours appears but the run holds a GPU, one listed process is taken to be the run itself."""
    if pids is None:
        return None
    foreign = [pid for pid in pids if pid not in ours]
    if using_gpu and len(foreign) == len(pids) and pids:
        return len(foreign) - 1
    return len(foreign)
