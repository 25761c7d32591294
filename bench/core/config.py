"""Run configurations and the one config identity (step: what planning produces and every later step keys on).

RunConfig's fields are the axes of the table (bench/core/axes.py), written out with their types so that people and
type checkers read them (a test keeps the two in step); the identity, labels, run ids, `reproduce` and the sweep's
product derive from the table: a config's identity is every axis that changes what is measured. Resume, quality
drift, report labels, compare and W&B names all use `identity` / `run_key` / `label` below, nothing else."""

from __future__ import annotations

import itertools
import json
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bench.core.axes import AXES, LABEL_LAST, args_cell, identity_axes, stop_label, stops_at_target
from bench.core.choices import AUTO, COMPILE_MODES, MATMUL_PRECISIONS, Choices, Precision, parse_device
from bench.core.inference_columns import INFERENCE_SCHEMA_VERSION
from bench.core.profiles import PROFILES

__all__ = ["AUTO", "COMPILE_MODES", "IDENTITY", "MATMUL_PRECISIONS", "PROFILES", "RunConfig", "args_cell",
           "identity", "label", "matrix", "parse_device", "run_key"]

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


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """What a run needs besides its axes: not in the identity, not a config column, the same for every run of a
    sweep (`dnnbench run` flags that bench/core/axes.py does not list)."""

    time_limit_s: float = 600.0
    peak_tflops: float | None = None
    wandb: str = "disabled"  # offline | online | disabled
    wandb_project: str = "dnnbench"
    wandb_entity: str = ""  # empty: the W&B account's default entity
    sweep_name: str = ""

    def reproduce_args(self) -> list[str]:
        """The settings' `dnnbench run` flags that change a rerun's numbers (W&B and the sweep's name do not)."""
        peak = ["--peak-tflops", f"{self.peak_tflops:g}"] if self.peak_tflops is not None else []
        return ["--time-limit", f"{self.time_limit_s:g}", *peak]


@dataclass(frozen=True, kw_only=True)
class RunConfig(RunSettings):
    """One isolated run: everything needed to reproduce one results row (the axes of bench/core/axes.py, in its
    order, with their types and defaults; tests/core/test_run_config.py keeps the two in step)."""

    model: str
    datamodule: str
    device: str = "cpu"
    num_devices: int = 1
    num_nodes: int = 1
    precision: Precision = "32-true"
    compile: bool = False
    compile_mode: str = "default"
    memory_format: str = "contiguous"
    matmul_precision: str = "highest"
    cudnn_benchmark: bool = False
    cudnn_tf32: bool = True
    batch_size: int = 128
    batch_size_mode: str = "fixed"  # or AUTO
    size: str = "classic"
    profile: str = "quick"
    stop_at_target: str = AUTO
    model_args: dict[str, Any] = field(default_factory=dict)
    data_args: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    repeat: int = 0
    infer_backends: str = "eager"
    infer_batch_sizes: str = ""

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
    def asks_for_curve(self) -> bool:
        """Whether its flags ask for the inference curve: anything besides eager at its own batch size (the
        default, timed without one)."""
        return self.infer_backends != "eager" or self.infer_batch_sizes not in ("", str(self.batch_size))

    def point_head(self, metric_name: str, metric_direction: str) -> dict[str, Any]:
        """The cells every inference.csv row of this run carries: its config columns, run id, schema and metric."""
        return self.columns() | {"run_id": self.run_id, "schema_version": INFERENCE_SCHEMA_VERSION,
                                 "metric_name": metric_name, "metric_direction": metric_direction}

    @property
    def wants_curve(self) -> bool:
        """Whether the run writes inference.csv rows: the curve asked for, on one device (a DDP run measures none)."""
        return self.asks_for_curve and self.world_size == 1

    def curve_missing(self, measured: set[tuple[str, str]]) -> list[str]:
        """The (backend, batch size) points this run writes that `measured` (those inference.csv holds for it)
        lacks, as `backend bsN` (`backend` alone where the batch size is the run's own): for --resume."""
        if not self.wants_curve:
            return []
        if not self.infer_batch_sizes:  # the run's batch size, which an auto search may have changed
            return [b for b in self.infer_backends.split(",") if not any(m[0] == b for m in measured)]
        return [f"{b} bs{n}" for b in self.infer_backends.split(",") for n in self.infer_batch_sizes.split(",")
                if (b, n) not in measured]

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
        return shlex.join(["dnnbench", "run", *(arg for axis in AXES for arg in axis.reproduce_args(self)),
                           *self.reproduce_args()])

    def but(self, **changes: Any) -> RunConfig:
        """This config with some fields changed (dataclasses.replace)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def matrix(choices: Mapping[str, Choices], default_data: Mapping[tuple[str, str], str],
           default_batch: Mapping[tuple[str, str], int], **settings: Any) -> list[RunConfig]:
    """Every combination of the sweep axes' values (each a list of the fields it sets: bench/core/choices.py), in
    the axes' product order (`Axis.sweep`: a config's precisions innermost, 32-true first, so the quality drift of
    the others can be filled in); `settings` are the same for every run.

    Compile modes multiply only the compiled configs: an eager run has no mode. Defaults are per (model, size);
    a batch size of `auto` starts its search at the default.
    """
    swept = sorted((axis for axis in AXES if axis.sweep), key=lambda axis: axis.sweep)
    configs: dict[str, RunConfig] = {}
    for combination in itertools.product(*(choices[axis.name] for axis in swept)):
        fields = {name: value for choice in combination for name, value in choice.items()}
        where = fields["model"], fields["size"]
        fields.setdefault("datamodule", default_data[where])
        fields.setdefault("batch_size", default_batch[where])
        if not fields.get("compile"):
            fields["compile_mode"] = "default"  # one eager run, whatever --compile-mode lists
        key = json.dumps(fields, sort_keys=True)
        if key not in configs:
            configs[key] = RunConfig(**fields, **settings)
    return list(configs.values())
