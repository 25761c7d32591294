"""Run configurations and the one config identity (step: what planning produces and every later step keys on).

The fields, the identity, labels, run ids and `reproduce` all derive from the axes table (bench/core/axes.py): a
config's identity is every axis that changes what is measured. Resume, quality drift, report labels, compare and W&B
names all use `identity` / `run_key` / `label` below, nothing else."""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Mapping
from dataclasses import asdict, field, make_dataclass, replace
from typing import TYPE_CHECKING, Any

from bench.core.axes import (
    AUTO,
    AXES,
    COMPILE_MODES,
    LABEL_LAST,
    MATMUL_PRECISIONS,
    Axis,
    args_cell,
    identity_axes,
    stop_label,
    stops_at_target,
)
from bench.core.profiles import PROFILES, SIZES

__all__ = ["AUTO", "COMPILE_MODES", "IDENTITY", "MATMUL_PRECISIONS", "PROFILES", "RunConfig", "args_cell",
           "identity", "label", "matrix", "parse_device", "run_key"]

DEVICE_TYPES = ("cpu", "cuda")

# Profile presets for the sweep itself (per-model epochs live in each model's BenchSpec).
SMOKE_LIMITS = {"limit_train_batches": 5, "limit_val_batches": 2, "limit_test_batches": 2}
DEFAULT_TIME_LIMIT_S = {"smoke": 300, "quick": 600, "standard": 1800, "full": 7200}
assert set(DEFAULT_TIME_LIMIT_S) == set(PROFILES)
# A run that stops at its target has a seconds cap on training besides its epochs: this share of its time limit (the
# process limit). Below that limit on purpose: a run that never reaches its target still has the rest of the time
# for its test, speed window and inference, and writes its row (`reached_target` no, with how far it got) instead
# of a `timeout` row without numbers. Fixed schedules (smoke, full) have no such cap: they train their epochs.
TRAIN_TIME_SHARE = 0.5

# The identity columns, in CSV order (bench/core/axes.py says which); seed and repeat: the repeat axis on top.
IDENTITY = tuple(axis.csv for axis in identity_axes())
REPEAT_AXIS = ("seed", "repeat")


def identity(row: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes two rows the same config (a CSV row, a RunConfig's columns, or a report's frame row)."""
    return tuple(axis.canonical(row) for axis in identity_axes())


def run_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    """What identifies one finished run (for --resume): the config's identity and its place on the repeat axis."""
    return identity(row) + tuple(str(row.get(column, "")) for column in REPEAT_AXIS)


def label(row: Mapping[str, Any], leave_out: tuple[str, ...] = ("model",)) -> str:
    """A short human name for a config: `mnist5k cpu:2 bf16-mixed compiled bs64 lr=0.01` (profile last); settings at
    their defaults are left out (the size only when it is not classic), `bs=auto` for a searched batch size."""
    ordered = [a for a in AXES if a.name not in LABEL_LAST] + [a for a in AXES if a.name in LABEL_LAST]
    texts = (axis.label_text(row) for axis in ordered if axis.csv not in leave_out)
    return " ".join(text for text in texts if text)


class RunSettings:
    """What a run needs besides its axes (not in the identity, not a config column), and what every config does."""

    time_limit_s: float
    peak_tflops: float | None

    @property
    def world_size(self) -> int:
        """Processes that train together: devices per node x nodes."""
        return self.num_devices * self.num_nodes

    @property
    def stops_at_target(self) -> bool:
        """Whether the quality run stops at the first validation that reaches the target (`--stop-at-target`)."""
        return stops_at_target(self.profile, self.stop_at_target)

    @property
    def train_time_cap_s(self) -> float | None:
        """Seconds of training after which a stop-at-target run stops anyway (None: fixed schedules)."""
        return self.time_limit_s * TRAIN_TIME_SHARE if self.stops_at_target else None

    @property
    def strategy(self) -> str:
        return "ddp" if self.world_size > 1 else "auto"

    @property
    def device_spec(self) -> str:
        return self.device if self.num_devices == 1 else f"{self.device}:{self.num_devices}"

    @property
    def run_id(self) -> str:
        """A file-name-safe id, unique within a sweep (the arguments and settings off their defaults enter through a
        short hash)."""
        import hashlib

        batch = "bsauto" if self.batch_size_mode == AUTO else f"bs{self.batch_size}"
        parts = [self.model, self.datamodule, self.device_spec.replace(":", "x"), self.precision,
                 "compile" if self.compile else "eager", batch, f"s{self.seed}", f"r{self.repeat}"]
        if self.size != "classic":
            parts.insert(1, self.size)
        columns = self.columns()
        settings = {a.csv: columns[a.csv] for a in AXES if a.quiet and str(columns[a.csv]) not in a.quiet}
        if stop_label(columns):  # stopping where the profile would not (as the label and the identity say)
            settings["stop_at_target"] = columns["stop_at_target"]
        if self.model_args or self.data_args or settings:
            text = args_cell(self.model_args) + args_cell(self.data_args) + args_cell(settings)
            parts.append(hashlib.sha1(text.encode()).hexdigest()[:8])
        return "-".join(p.replace("/", "_").replace(":", "_").replace(".", "_") for p in parts)

    def columns(self) -> dict[str, Any]:
        """The config's cells of its results row."""
        return {axis.csv: axis.cell_of(self) for axis in AXES if axis.csv}

    def key(self) -> tuple[str, ...]:
        return run_key(self.columns())

    def label(self) -> str:
        return label(self.columns(), leave_out=())

    def reproduce(self) -> str:
        """The `dnnbench run` command that re-runs this row (same seed; its repeat index reads 0)."""
        args = ["dnnbench", "run"]
        for axis in AXES:
            args += axis.reproduce_args(self)
        args += ["--time-limit", f"{self.time_limit_s:g}"]
        if self.peak_tflops is not None:
            args += ["--peak-tflops", f"{self.peak_tflops:g}"]
        return shlex.join(args)

    def but(self, **changes: Any) -> Any:
        """This config with some fields changed (dataclasses.replace)."""
        return replace(self, **changes)  # type: ignore[type-var]  # every subclass is a dataclass

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass

    if TYPE_CHECKING:  # the axes' fields, which the type checker cannot see in the generated class
        def __getattr__(self, name: str) -> Any: ...


def axis_field(axis: Axis) -> tuple[str, Any, Any]:
    if axis.required:
        return axis.name, axis.type, field()
    if axis.type is dict:
        return axis.name, dict[str, Any], field(default_factory=dict)
    return axis.name, axis.type, field(default=axis.default)


# Everything needed to reproduce one results row: the axes (bench/core/axes.py), then the run's own settings.
RUN_SETTINGS = [
    ("time_limit_s", float, field(default=600.0)),
    ("peak_tflops", float | None, field(default=None)),
    ("wandb", str, field(default="disabled")),
    ("wandb_project", str, field(default="dnnbench")),
    ("wandb_entity", str, field(default="")),  # empty: the W&B account's default entity
    ("sweep_name", str, field(default="")),
]
if TYPE_CHECKING:
    class RunConfig(RunSettings):  # the type checker's view: fields it cannot see
        def __init__(self, **fields: Any) -> None: ...
else:
    RunConfig = make_dataclass("RunConfig", [axis_field(a) for a in AXES if a.field] + RUN_SETTINGS,
                               bases=(RunSettings,), kw_only=True)
    RunConfig.__module__ = __name__  # pickles (the warm server, Ray) find it here
    RunConfig.__doc__ = "One isolated run: everything needed to reproduce one results row."


def parse_device(spec: str) -> tuple[str, int]:
    """'cpu' -> ('cpu', 1); 'cuda:4' -> ('cuda', 4)."""
    kind, _, count = spec.partition(":")
    if kind not in DEVICE_TYPES:
        raise ValueError(f"unknown device {spec!r}; use cpu, cuda, or cpu:N / cuda:N for N-device DDP runs")
    if count and (not (count.isascii() and count.isdigit()) or int(count) < 1):
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
