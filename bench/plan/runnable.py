"""What can run here (step: planned configs -> those this machine can run, and one line for each it cannot).

A config that could only end as an `unavailable` or `unsupported` row, or fail on data that is not there, is known
before anything runs: no GPU for `--devices cuda`, a precision the device type cannot do (`16-mixed` on a CPU), a
datamodule whose files are missing. When no config of the sweep can run, the sweep is refused (exit 2, one line
with the fix, nothing written); when some can, the others are skipped with one line each and get no row.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.choices import UNSUPPORTED_ON
from bench.core.config import RunConfig
from bench.core.errors import PlanError


@dataclass(frozen=True)
class Skipped:
    config: RunConfig
    reason: str  # one line with the fix

    def line(self, name: str | None = None) -> str:
        """`dnnbench: skipped <name>: <reason>`; `name`: how the console names the run (default: its full label)."""
        return f"dnnbench: skipped {name or self.config.label()}: {self.reason}"


def gpus_here() -> int:
    """GPUs this process sees. torch.cuda.device_count asks NVML where it can, so it leaves CUDA uninitialised (the
    sweep never initialises CUDA: bench/launch/warm_server.py)."""
    import torch

    return torch.cuda.device_count()


def device_problem(config: RunConfig, gpus: int) -> str | None:
    if config.device != "cuda" or config.num_devices <= gpus:
        return None
    if gpus == 0:
        return "no CUDA GPU on this machine: use --devices cpu (or auto)"
    return f"{config.num_devices} GPUs asked, {gpus} here: use --devices cuda:{gpus} or fewer"


def precision_problem(config: RunConfig) -> str | None:
    return UNSUPPORTED_ON.get((config.precision, config.device))


def split(configs: list[RunConfig], data_problems: dict[tuple[str, str, str], str],
          check_devices: bool = True) -> tuple[list[RunConfig], list[Skipped]]:
    """(configs that can run, configs skipped with their reason); a PlanError when none can run.

    `data_problems`: (model, size, datamodule) -> why its data cannot load here. `check_devices` is off for a Ray
    cluster, whose GPUs this machine does not see."""
    gpus = gpus_here() if check_devices and any(c.device == "cuda" for c in configs) else 0
    runnable, skipped = [], []
    for config in configs:
        reason = (precision_problem(config) or (device_problem(config, gpus) if check_devices else None)
                  or data_problems.get((config.model, config.size, config.datamodule)))
        if reason:
            skipped.append(Skipped(config, reason))
        else:
            runnable.append(config)
    if configs and not runnable:
        reasons = list(dict.fromkeys(s.reason for s in skipped))
        raise PlanError("nothing in this sweep can run here: " + "; ".join(reasons))
    return runnable, skipped
