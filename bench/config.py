"""Run configurations and the one config identity (step: what planning produces and every later step keys on).

A config's identity is every axis that changes what is measured: model, data, devices, precision, compile,
batch size (a number, or `auto` for a searched one), size, profile, and the model/data arguments. Resume, quality
drift, report labels, compare and W&B names all use `identity` / `run_key` / `label` below, nothing else.
"""

from __future__ import annotations

import itertools
import json
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from lightning_modules.base import PROFILES, SIZES

DEVICE_TYPES = ("cpu", "cuda")

# Profile presets for the sweep itself (per-model epochs live in each model's BenchSpec).
SMOKE_LIMITS = {"limit_train_batches": 5, "limit_val_batches": 2, "limit_test_batches": 2}
DEFAULT_TIME_LIMIT_S = {"smoke": 300, "quick": 600, "standard": 1800, "full": 7200}
assert set(DEFAULT_TIME_LIMIT_S) == set(PROFILES)

# The identity columns, in CSV order; seed and repeat are the repeat axis on top of them.
IDENTITY = ("model", "datamodule", "device", "num_devices", "num_nodes", "precision", "compile", "compile_mode",
            "memory_format", "matmul_precision", "cudnn_benchmark", "batch_size", "size", "profile", "model_args",
            "data_args")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's modes (reduce-overhead: CUDA graphs)
MATMUL_PRECISIONS = ("highest", "high", "medium")  # torch.set_float32_matmul_precision: high/medium allow TF32
# The label leaves out settings at these values (the defaults), so ordinary sweeps keep short names.
QUIET_SETTINGS = {"compile_mode": ("", "default"), "memory_format": ("contiguous",), "matmul_precision": ("highest",),
                  "cudnn_benchmark": ("off",), "size": ("", "classic")}
# What rows written before these columns existed ran with (torch's own defaults; the classic size, a fixed batch).
SETTINGS_BEFORE_SCHEMA_3 = {"memory_format": "contiguous", "matmul_precision": "highest", "cudnn_benchmark": "off",
                            "size": "classic", "batch_size_mode": "fixed"}
AUTO = "auto"  # batch_size_mode of a searched batch size (its identity cell reads `auto`, whatever was found)
REPEAT_AXIS = ("seed", "repeat")


def args_cell(args: Mapping[str, Any] | str | None) -> str:
    """Model/data arguments as their canonical CSV cell: a JSON object with sorted keys (`{}` for none)."""
    if isinstance(args, str):
        args = json.loads(args) if args.strip() else {}
    return json.dumps(dict(args or {}), sort_keys=True, default=str)


def identity(row: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes two rows the same config (a CSV row, a RunConfig's columns, or a report's frame row)."""
    cells = []
    for column in IDENTITY:
        value = row.get(column, "")
        if column in ("model_args", "data_args"):
            value = args_cell(value)
        elif column == "compile" and isinstance(value, bool):
            value = "on" if value else "off"
        elif column == "batch_size" and row.get("batch_size_mode") == AUTO:
            value = AUTO  # repeats of an auto config are one config, whichever batch each found
        cells.append(str(value) or SETTINGS_BEFORE_SCHEMA_3.get(column, ""))
    return tuple(cells)


def run_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    """What identifies one finished run (for --resume): the config's identity and its place on the repeat axis."""
    return identity(row) + tuple(str(row.get(column, "")) for column in REPEAT_AXIS)


def label(row: Mapping[str, Any], leave_out: tuple[str, ...] = ("model",)) -> str:
    """A short human name for a config: `mnist5k cpu:2 bf16-mixed compiled bs64 lr=0.01` (profile last); the size
    only when it is not classic, `bs=auto` for a searched batch size."""
    count = int(row.get("num_devices") or 1) * int(row.get("num_nodes") or 1)
    parts = {
        "model": str(row.get("model", "")),
        "datamodule": str(row.get("datamodule", "")),
        "device": str(row.get("device", "")) + (f":{count}" if count > 1 else ""),
        "precision": str(row.get("precision", "")),
        "compile": "compiled" if identity(row)[IDENTITY.index("compile")] == "on" else "",
        "compile_mode": str(row.get("compile_mode", "") or ""),
        "memory_format": str(row.get("memory_format", "") or ""),
        "matmul_precision": f"matmul={row.get('matmul_precision', '')}" if row.get("matmul_precision") else "",
        "cudnn_benchmark": f"cudnn.benchmark={row.get('cudnn_benchmark', '')}" if row.get("cudnn_benchmark") else "",
        "batch_size": "bs=auto" if row.get("batch_size_mode") == AUTO else f"bs{row.get('batch_size', '')}",
        "size": str(row.get("size", "") or ""),
        "model_args": " ".join(f"{k}={v}" for k, v in json.loads(args_cell(row.get("model_args"))).items()),
        "data_args": " ".join(f"data.{k}={v}" for k, v in json.loads(args_cell(row.get("data_args"))).items()),
        "profile": str(row.get("profile", "")),
    }
    shown = {name: text for name, text in parts.items() if str(row.get(name, "") or "") not in
             QUIET_SETTINGS.get(name, ())}
    return " ".join(text for name, text in shown.items() if text and name not in leave_out)


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
    compile_mode: str = "default"  # torch.compile(mode=...), when compile is on
    channels_last: bool = False  # image models: weights (and so convolutions) in channels-last memory format
    matmul_precision: str = "highest"  # torch.set_float32_matmul_precision: "high"/"medium" allow TF32
    cudnn_benchmark: bool = False  # torch.backends.cudnn.benchmark (Trainer(benchmark=...)); torch's default
    batch_size: int = 128  # with batch_size_mode "auto": where the search starts, then the batch it found
    batch_size_mode: str = "fixed"  # fixed | auto (the largest power-of-two multiple that fits, searched per run)
    size: str = "classic"  # classic | large (the model's SizePreset)
    profile: str = "quick"
    seed: int = 0
    repeat: int = 0
    time_limit_s: float = 600.0
    data_args: dict[str, Any] = field(default_factory=dict)
    model_args: dict[str, Any] = field(default_factory=dict)
    peak_tflops: float | None = None
    wandb: str = "disabled"
    wandb_project: str = "dnnbench"
    wandb_entity: str = ""  # empty: the W&B account's default entity
    sweep_name: str = ""

    @property
    def world_size(self) -> int:
        """Processes that train together: devices per node x nodes."""
        return self.num_devices * self.num_nodes

    @property
    def strategy(self) -> str:
        return "ddp" if self.world_size > 1 else "auto"

    @property
    def device_spec(self) -> str:
        return self.device if self.num_devices == 1 else f"{self.device}:{self.num_devices}"

    @property
    def run_id(self) -> str:
        """A file-name-safe id, unique within a sweep (the arguments enter through a short hash)."""
        import hashlib

        batch = "bsauto" if self.batch_size_mode == AUTO else f"bs{self.batch_size}"
        parts = [self.model, self.datamodule, self.device_spec.replace(":", "x"), self.precision,
                 "compile" if self.compile else "eager", batch, f"s{self.seed}", f"r{self.repeat}"]
        if self.size != "classic":
            parts.insert(1, self.size)
        settings = {k: v for k, v in self.columns().items() if k in QUIET_SETTINGS and v not in QUIET_SETTINGS[k]}
        if self.model_args or self.data_args or settings:
            text = args_cell(self.model_args) + args_cell(self.data_args) + args_cell(settings)
            parts.append(hashlib.sha1(text.encode()).hexdigest()[:8])
        return "-".join(p.replace("/", "_").replace(":", "_").replace(".", "_") for p in parts)

    def columns(self) -> dict[str, Any]:
        """The config's cells of its results row."""
        return {"model": self.model, "datamodule": self.datamodule, "device": self.device,
                "num_devices": self.num_devices, "num_nodes": self.num_nodes, "strategy": self.strategy,
                "precision": self.precision, "compile": "on" if self.compile else "off",
                "compile_mode": self.compile_mode if self.compile else "",
                "memory_format": "channels_last" if self.channels_last else "contiguous",
                "matmul_precision": self.matmul_precision, "cudnn_benchmark": "on" if self.cudnn_benchmark else "off",
                "batch_size": self.batch_size, "batch_size_mode": self.batch_size_mode, "size": self.size,
                "profile": self.profile, "model_args": args_cell(self.model_args),
                "data_args": args_cell(self.data_args), "seed": self.seed, "repeat": self.repeat}

    def key(self) -> tuple[str, ...]:
        return run_key(self.columns())

    def label(self) -> str:
        return label(self.columns(), leave_out=())

    def reproduce(self) -> str:
        """The `dnnbench run` command that re-runs this row (same seed; its repeat index reads 0)."""
        args = ["dnnbench", "run", "--models", self.model, "--data", self.datamodule, "--devices", self.device_spec,
                "--precisions", self.precision, "--compile", "on" if self.compile else "off",
                "--batch-sizes", AUTO if self.batch_size_mode == AUTO else str(self.batch_size),
                "--sizes", self.size, "--profile", self.profile, "--seed", str(self.seed),
                "--time-limit", f"{self.time_limit_s:g}"]
        if self.num_nodes > 1:
            args += ["--num-nodes", str(self.num_nodes)]
        if self.compile:
            args += ["--compile-mode", self.compile_mode]
        if self.channels_last:
            args += ["--channels-last"]
        args += ["--matmul-precision", self.matmul_precision, "--cudnn-benchmark",
                 "on" if self.cudnn_benchmark else "off"]
        for key, value in self.data_args.items():
            args += ["--data-arg", f"{key}={value}"]
        for key, value in self.model_args.items():
            args += ["--model-arg", f"{key}={value}"]
        if self.peak_tflops is not None:
            args += ["--peak-tflops", f"{self.peak_tflops:g}"]
        return shlex.join(args)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_device(spec: str) -> tuple[str, int]:
    """'cpu' -> ('cpu', 1); 'cuda:4' -> ('cuda', 4)."""
    kind, _, count = spec.partition(":")
    if kind not in DEVICE_TYPES:
        raise ValueError(f"unknown device {spec!r}; use cpu, cuda, or cpu:N / cuda:N for N-device DDP runs")
    if count and (not count.isdigit() or int(count) < 1):
        raise ValueError(f"device count in {spec!r} must be a positive integer")
    return kind, int(count or 1)


def matrix(models: list[str], data: list[str | None], devices: list[tuple[str, int]], precisions: list[str],
           compiles: list[bool], batch_sizes: list[int | str | None], repeats: int, seed: int,
           default_data: dict[tuple[str, str], str], default_batch: dict[tuple[str, str], int],
           compile_modes: tuple[str, ...] = ("default",), sizes: tuple[str, ...] = ("classic",),
           **common: Any) -> list[RunConfig]:
    """Every combination; 32-true first within a config so the quality drift of others can be filled in.

    Compile modes multiply only the compiled configs: an eager run has no mode. Defaults are per (model, size);
    a batch size of `auto` starts its search at the default.
    """
    assert set(sizes) <= set(SIZES), sizes
    ordered_precisions = sorted(precisions, key=lambda p: p != "32-true")
    compile_axis = [(on, mode) for on in compiles for mode in (compile_modes if on else ("default",))]
    configs = []
    for model, size, datamodule, (device, count), (compile_, mode), batch_size, repeat, precision in \
            itertools.product(models, sizes, data, devices, compile_axis, batch_sizes, range(repeats),
                              ordered_precisions):
        auto = batch_size == AUTO
        configs.append(RunConfig(
            model=model, datamodule=datamodule or default_data[model, size], device=device, num_devices=count,
            precision=precision, compile=compile_, compile_mode=mode,
            batch_size=default_batch[model, size] if auto or batch_size is None else batch_size,
            batch_size_mode=AUTO if auto else "fixed", size=size, seed=seed + repeat, repeat=repeat, **common))
    return configs
