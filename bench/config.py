"""Run configurations and the sweep matrix: the product of the comma lists on the command line."""

from __future__ import annotations

import itertools
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "bf16-true", "64-true")
PROFILES = ("smoke", "quick", "standard", "full")
DEVICE_TYPES = ("cpu", "cuda")

# Profile presets for the sweep itself (per-model epochs live in each model's BenchSpec).
SMOKE_LIMITS = {"limit_train_batches": 5, "limit_val_batches": 2, "limit_test_batches": 2}
DEFAULT_TIME_LIMIT_S = {"smoke": 300, "quick": 600, "standard": 1800, "full": 7200}


@dataclass
class RunConfig:
    """One isolated run: everything needed to reproduce one results row."""

    model: str
    datamodule: str
    device: str = "cpu"  # cpu | cuda
    num_devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"
    compile: bool = False
    batch_size: int = 128
    profile: str = "quick"
    seed: int = 0
    repeat: int = 0
    time_limit_s: float = 600.0
    data_args: dict[str, Any] = field(default_factory=dict)
    model_args: dict[str, Any] = field(default_factory=dict)
    peak_tflops: float | None = None
    wandb: str = "disabled"
    sweep_name: str = ""

    @property
    def strategy(self) -> str:
        return "ddp" if self.num_devices * self.num_nodes > 1 else "auto"

    @property
    def device_spec(self) -> str:
        return self.device if self.num_devices == 1 else f"{self.device}:{self.num_devices}"

    @property
    def run_id(self) -> str:
        parts = [self.model, self.datamodule, self.device_spec.replace(":", "x"), self.precision,
                 "compile" if self.compile else "eager", f"bs{self.batch_size}", f"s{self.seed}", f"r{self.repeat}"]
        return "-".join(p.replace("/", "_").replace(":", "_").replace(".", "_") for p in parts)

    def key(self) -> tuple:
        """What identifies a finished row for --resume (matches the CSV's config columns)."""
        return tuple(str(v) for v in (self.model, self.datamodule, self.device, self.num_devices, self.num_nodes,
                                      self.precision, "on" if self.compile else "off", self.batch_size,
                                      self.profile, self.seed, self.repeat))

    def columns(self) -> dict[str, Any]:
        return {"model": self.model, "datamodule": self.datamodule, "device": self.device,
                "num_devices": self.num_devices, "num_nodes": self.num_nodes, "strategy": self.strategy,
                "precision": self.precision, "compile": "on" if self.compile else "off",
                "batch_size": self.batch_size, "profile": self.profile, "seed": self.seed, "repeat": self.repeat}

    def reproduce(self) -> str:
        """The `dnnbench run` command that re-runs this row (same seed; its repeat index reads 0)."""
        args = ["dnnbench", "run", "--models", self.model, "--data", self.datamodule, "--devices", self.device_spec,
                "--precisions", self.precision, "--compile", "on" if self.compile else "off",
                "--batch-sizes", str(self.batch_size), "--profile", self.profile, "--seed", str(self.seed),
                "--time-limit", f"{self.time_limit_s:g}"]
        if self.num_nodes > 1:
            args += ["--num-nodes", str(self.num_nodes)]
        for key, value in self.data_args.items():
            args += ["--data-arg", f"{key}={value}"]
        for key, value in self.model_args.items():
            args += ["--model-arg", f"{key}={value}"]
        if self.peak_tflops is not None:
            args += ["--peak-tflops", f"{self.peak_tflops:g}"]
        return shlex.join(args)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def key_of_row(row: dict[str, Any]) -> tuple:
    return tuple(str(row[c]) for c in ("model", "datamodule", "device", "num_devices", "num_nodes", "precision",
                                       "compile", "batch_size", "profile", "seed", "repeat"))


def parse_device(spec: str) -> tuple[str, int]:
    """'cpu' -> ('cpu', 1); 'cuda:4' -> ('cuda', 4)."""
    kind, _, count = spec.partition(":")
    if kind not in DEVICE_TYPES:
        raise ValueError(f"unknown device {spec!r}; use cpu, cuda, or cpu:N / cuda:N for N-device DDP runs")
    if count and (not count.isdigit() or int(count) < 1):
        raise ValueError(f"device count in {spec!r} must be a positive integer")
    return kind, int(count or 1)


def matrix(models: list[str], data: list[str | None], devices: list[tuple[str, int]], precisions: list[str],
           compiles: list[bool], batch_sizes: list[int | None], repeats: int, seed: int,
           default_data: dict[str, str], default_batch: dict[str, int], **common: Any) -> list[RunConfig]:
    """Every combination; 32-true first within a config so the quality drift of others can be filled in."""
    ordered_precisions = sorted(precisions, key=lambda p: p != "32-true")
    configs = []
    for model, datamodule, (device, count), compile_, batch_size, repeat, precision in itertools.product(
            models, data, devices, compiles, batch_sizes, range(repeats), ordered_precisions):
        configs.append(RunConfig(
            model=model, datamodule=datamodule or default_data[model], device=device, num_devices=count,
            precision=precision, compile=compile_, batch_size=batch_size or default_batch[model],
            seed=seed + repeat, repeat=repeat, **common))
    return configs
