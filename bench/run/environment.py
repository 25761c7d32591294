"""Environment capture (step: what the row says about the machine and software it ran on; bench/results/provenance.py
reads those columns back for report and compare)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

CODE_PATHS = ["bench", "lightning_modules", "datamodules", "pyproject.toml", "constraints.txt"]
# Variables that change speed or placement; recorded when set (prefixes: every variable starting with them).
SPEED_ENV_VARS = ("CUDA_VISIBLE_DEVICES", "CUDA_LAUNCH_BLOCKING", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                  "OPENBLAS_NUM_THREADS", "OMP_PROC_BIND", "KMP_AFFINITY", "PYTORCH_CUDA_ALLOC_CONF",
                  "CUBLAS_WORKSPACE_CONFIG", "NVIDIA_TF32_OVERRIDE")
SPEED_ENV_PREFIXES = ("NCCL_", "TORCHINDUCTOR_", "MALLOC_")
def git_commit() -> str:
    """HEAD's short hash, with `-dirty` when the code (not results) differs from it: the row's code is not HEAD's."""
    root = Path(__file__).resolve().parents[2]  # bench/run/ -> the repository
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
                                 cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{commit}-dirty" if commit and changed else commit


def cpu_model() -> str:
    """The CPU's brand string from py-cpuinfo, cached per machine and boot: py-cpuinfo probes in a subprocess
    (~1 s), too slow to pay on every run."""
    import psutil

    folder = Path(os.environ.get("DNNBENCH_CACHE") or Path.home() / ".cache" / "dnnbench")  # the sweep's cache
    cache = folder / f"cpu-{platform.node()}-{int(psutil.boot_time())}.json"
    try:
        return json.loads(cache.read_text())["brand_raw"]
    except (OSError, ValueError, KeyError):
        pass
    import cpuinfo

    brand = cpuinfo.get_cpu_info().get("brand_raw") or platform.machine()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"brand_raw": brand}))
    except OSError:
        pass  # a read-only home only costs the probe next time
    return brand


def gpu_driver() -> str:
    """The NVIDIA driver version from NVML; empty where there is no driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no NVML library or no driver: a CPU machine
        return ""
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        pynvml.nvmlShutdown()


def speed_env_vars() -> str:
    """The set variables among SPEED_ENV_VARS / SPEED_ENV_PREFIXES, as a JSON object."""
    chosen = {k: v for k, v in os.environ.items() if k in SPEED_ENV_VARS or k.startswith(SPEED_ENV_PREFIXES)}
    return json.dumps(dict(sorted(chosen.items())))


def environment(device: str) -> dict[str, Any]:
    """The environment columns of a run on `device` ("cpu" / "cuda")."""
    import lightning
    import psutil
    import torch

    cpu = cpu_model()
    device_name = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else cpu
    # cuDNN only for GPU rows: asking for its version loads the library (hundreds of MB of address space), which
    # under a memory limit aborts a CPU run that never uses it.
    cudnn = torch.backends.cudnn.version() if device == "cuda" and torch.backends.cudnn.is_available() else None
    return {"device_name": device_name, "cpu_model": cpu, "cpu_threads": psutil.cpu_count(logical=True),
            "torch_threads": torch.get_num_threads(), "gpu_driver": gpu_driver(),
            "torch_version": torch.__version__, "lightning_version": lightning.__version__,
            "cuda_version": torch.version.cuda or "", "cudnn_version": str(cudnn or ""),
            "env_vars": speed_env_vars(), "git_commit": git_commit(), "hostname": platform.node()}
