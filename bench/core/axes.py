"""The config axes: one entry per fact of a run's config (step: the table that the identity, labels, run ids,
`reproduce`, the CLI flags and their checks, the sweep's product, the config columns and their docs are derived from).

Adding an axis is one `Axis` below, its typed field on RunConfig (bench/core/config.py: a test keeps the two in step)
and the code that uses its value; an entry states only what it has (no label, no flag, no reproduce words unless
given). Plain data: no torch, so `dnnbench report`, `compare` and `list --help` read it for free.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.core import choices
from bench.core.choices import (
    AUTO,
    COMPILE_MODES,
    INFER_BACKENDS,
    MATMUL_PRECISIONS,
    ON_OFF,
    PRECISION_NAMES,
    STOP_AT_TARGET,
)
from bench.core.profiles import PROFILES, SIZES, STOPS_AT_TARGET

Row = Mapping[str, Any]


def args_cell(args: Mapping[str, Any] | str | None) -> str:
    """Model/data arguments as their canonical CSV cell: a JSON object with sorted keys (`{}` for none)."""
    if isinstance(args, str):
        args = json.loads(args) if args.strip() else {}
    return json.dumps(dict(args or {}), sort_keys=True, default=str)


def on_off(value: Any) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def stops_at_target(profile: str, choice: str) -> bool:
    """Whether a quality run stops at its target: `--stop-at-target on|off`, or `auto`: the profile's rule."""
    return STOPS_AT_TARGET.get(profile, False) if choice == AUTO else choice == "on"


def stop_label(row: Mapping[str, Any]) -> str:
    """Named in the label only where it differs from what the row's profile does by default."""
    cell = str(row.get("stop_at_target", "") or "")
    usual = on_off(stops_at_target(str(row.get("profile", "")), AUTO))
    return f"stop-at-target={cell}" if cell and cell != usual else ""


@dataclass(frozen=True)
class Axis:
    """One fact of a config: its field, column, flag, defaults, identity membership and label."""

    name: str  # the RunConfig field
    type: Any  # the field's type: bool axes are `on`/`off` in cells and on the command line
    description: str  # the column's meaning (results/README.md)
    default: Any = None  # the field's default; no default (a required field) when `required`
    required: bool = False
    column: str | None = None  # the CSV column; None: the same as `name`; "" for none (not in the row)
    flag: str | None = None  # the `dnnbench run` flag that sets it (None: set by another axis's flag, or none)
    help: str = ""
    flag_options: dict[str, Any] = field(default_factory=dict)  # more argparse keywords (default, choices, type)
    before: str | Callable[[Row], str] | None = None  # the cell of rows from schemas before this column existed
    identity: bool = True  # part of what makes two rows the same config
    outside: str = ""  # why an axis is not part of the identity (the docs say so)
    quiet: tuple[str, ...] = ()  # the label leaves out these cells (the defaults), so ordinary sweeps keep short names
    label: str | Callable[[Row], str] = ""  # the label's text for the cell ("{}": the cell), or a function of the row
    console: bool = False  # shown in the console table at the end of a sweep
    cell: Callable[[Any], Any] | None = None  # the config -> its cell (default: the field, bools on/off, dicts JSON)
    key: Callable[[Row], str] | None = None  # the row -> its identity cell (default: the cell as read back)
    field: bool = True  # a RunConfig field (False: a property of the config, e.g. `strategy`)
    sweep: int = 0  # its place in a sweep's product (bench/core/config.py matrix), outermost 1; 0: one value for all
    parse: Callable[[Any], Any] | None = None  # the flag's value -> the field's (default: bool axes take on/off); a
    # sweep axis's: its comma list -> the fields each value sets (bench/core/choices.py; the models: the registry's)
    reproduce: Callable[[Any], list[str]] | None = None  # the config -> its flag and value (default: the flag, if any)

    @property
    def csv(self) -> str:
        return self.name if self.column is None else self.column

    def cell_of(self, config: Any) -> Any:
        if self.cell is not None:
            return self.cell(config)
        value = getattr(config, self.name)
        if self.type is bool:
            return on_off(value)
        return args_cell(value) if self.type is dict else value

    def canonical(self, row: Row) -> str:
        """The identity cell of a row (a CSV row, a RunConfig's columns or a report frame's row)."""
        if self.key is not None:
            return self.key(row)
        value = row.get(self.csv, "")
        if self.type is dict:
            return args_cell(value)
        text = on_off(value) if isinstance(value, bool) else str(value)
        return text or (self.before if isinstance(self.before, str) else "")

    @property
    def dest(self) -> str:
        """The flag's attribute in the parsed command line."""
        return self.flag.lstrip("-").replace("-", "_") if self.sweep and self.flag else self.name

    def label_text(self, row: Row) -> str:
        if not self.label or str(row.get(self.csv, "") or "") in self.quiet:
            return ""
        if callable(self.label):
            return self.label(row)
        value = row.get(self.csv, "")
        return self.label.format(on_off(value)) if value not in (None, "") else ""

    def reproduce_args(self, config: Any) -> list[str]:
        if self.reproduce is not None:
            return self.reproduce(config)
        if not self.flag:
            return []
        return [self.flag, str(self.cell_of(config))]

    def from_flag(self, value: Any) -> Any:
        """The parsed flag's value as the field's (bool axes take on/off)."""
        if self.parse is not None:
            return self.parse(value)
        return value == "on" if self.type is bool and isinstance(value, str) else value

    def add_flag(self, parser: Any) -> None:
        """The axis's `dnnbench run` flag (a sweep axis's comma list is checked by its `parse`)."""
        if self.flag:
            dest = {} if self.sweep or "dest" in self.flag_options else {"dest": self.dest}
            parser.add_argument(self.flag, help=self.help, **dest, **self.flag_options)


def device_count(row: Row) -> int:
    return int(row.get("num_devices") or 1) * int(row.get("num_nodes") or 1)


def args_label(prefix: str, column: str) -> Callable[[Row], str]:
    return lambda row: " ".join(f"{prefix}{k}={v}" for k, v in json.loads(args_cell(row.get(column))).items())


def repeated(flag: str, name: str) -> Callable[[Any], list[str]]:
    return lambda config: [part for k, v in getattr(config, name).items() for part in (flag, f"{k}={v}")]


A = Axis
AXES: list[Axis] = [  # CSV order of the config columns
    A("model", str, "registered model name or `package.module:Class`", required=True, console=True,
      flag="--models", sweep=2, label="{}", help="comma list of registered names or package.module:Class",
      flag_options={"default": "all"}),
    A("datamodule", str, "registered datamodule name or import path", required=True, flag="--data", sweep=4,
      help="comma list of datamodules (default: each model's own)", flag_options={"default": "default"},
      parse=choices.data, label="{}"),
    A("device", str, "`cpu` or `cuda`", "cpu", console=True, flag="--devices", sweep=5,
      help="comma list: cpu, cuda, cpu:N, cuda:N (DDP), or auto (cpu, plus cuda where present)",
      flag_options={"default": "cpu"}, parse=choices.devices,
      label=lambda row: str(row.get("device", "")) + (f":{device_count(row)}" if device_count(row) > 1 else ""),
      reproduce=lambda config: ["--devices", config.device_spec]),
    A("num_devices", int, "devices per node (>1 = DDP)", 1, console=True),  # spelled in `device` (cpu:2), `--devices`
    A("num_nodes", int, "nodes (handed to Lightning)", 1, flag="--num-nodes",
      help="nodes for multi-node DDP (handed to Lightning)", flag_options={"type": int, "default": 1},
      reproduce=lambda c: ["--num-nodes", str(c.num_nodes)] if c.num_nodes > 1 else []),
    A("strategy", str, "Lightning strategy: `auto` for one device, `ddp` for several", "", identity=False,
      outside="follows from the devices", field=False),
    A("precision", str, "Lightning precision (bench/run/precision.py): " + ", ".join(f"`{p}`" for p in PRECISION_NAMES),
      "32-true", console=True, flag="--precisions", sweep=9, help=f"comma list of {', '.join(PRECISION_NAMES)}",
      flag_options={"default": "32-true"}, parse=choices.precisions, label="{}"),
    A("compile", bool, "`on` = the LightningModule went through `torch.compile`, `off` = eager", False,
      console=True, flag="--compile", sweep=6, help="comma list of off,on (torch.compile)",
      flag_options={"default": "off"}, parse=choices.compile_flags,
      label=lambda row: "compiled" if on_off(row.get("compile", "")) == "on" else ""),
    A("compile_mode", str, "`torch.compile` mode when compiled (`default`, `reduce-overhead` = CUDA graphs, "
      "`max-autotune`); empty when eager", "default", quiet=("", "default"),
      label="{}", cell=lambda config: config.compile_mode if config.compile else "", flag="--compile-mode", sweep=7,
      help=f"comma list of torch.compile modes for compiled runs: {', '.join(COMPILE_MODES)} (reduce-overhead = "
      "CUDA graphs)", flag_options={"default": "default"}, parse=choices.compile_modes,
      before=lambda row: "default" if row.get("compile") == "on" else "",
      reproduce=lambda c: ["--compile-mode", c.compile_mode] if c.compile else []),
    A("memory_format", str, "`channels_last` (`--channels-last`: the module's weights, and so its convolutions, in "
      "channels-last format) or `contiguous`", "contiguous", flag="--channels-last",
      help="image models: weights (and so convolutions) in channels-last memory format",
      flag_options={"action": "store_true"}, parse=lambda on: "channels_last" if on else "contiguous",
      before="contiguous", quiet=("contiguous",), label="{}",
      reproduce=lambda c: ["--channels-last"] if c.memory_format == "channels_last" else []),
    A("matmul_precision", str, "`torch.set_float32_matmul_precision`: `highest` (true fp32 matmuls), "
      "`high`/`medium` (TF32 allowed: fp32 rows then use the TF32 peak)", "highest", flag="--matmul-precision",
      help="torch.set_float32_matmul_precision: high/medium let fp32 matmuls use TF32 tensor cores",
      flag_options={"default": "highest", "choices": MATMUL_PRECISIONS}, before="highest", quiet=("highest",),
      label="matmul={}"),
    A("cudnn_benchmark", bool, "`torch.backends.cudnn.benchmark` (`on`: cuDNN autotunes convolution algorithms "
      "during warm-up)", False, flag="--cudnn-benchmark",
      help="torch.backends.cudnn.benchmark: autotune convolution algorithms during warm-up",
      flag_options={"default": "off", "choices": ON_OFF}, before="off", quiet=("off",), label="cudnn.benchmark={}"),
    A("cudnn_tf32", bool, "`torch.backends.cudnn.allow_tf32` (`on`, torch's default: cuDNN convolutions in fp32 "
      "may use TF32 tensor cores; `off`: true fp32 convolutions)", True, flag="--cudnn-tf32",
      help="torch.backends.cudnn.allow_tf32: let cuDNN convolutions in fp32 use TF32 tensor cores (torch's default)",
      flag_options={"default": "on", "choices": ON_OFF}, before="on", quiet=("on",), label="cudnn.tf32={}"),
    A("batch_size", int, "per-device batch size (train and inference timing); with `batch_size_mode` `auto`, the "
      "batch the search found", 128, console=True, flag="--batch-sizes", sweep=8,
      help="comma list of numbers and/or auto (the largest that fits; default: each model's own)",
      flag_options={"default": "default"}, parse=choices.batch_sizes,
      label=lambda row: "bs=auto" if row.get("batch_size_mode") == AUTO else f"bs{row.get('batch_size', '')}",
      key=lambda row: AUTO if row.get("batch_size_mode") == AUTO else str(row.get("batch_size", "")),
      reproduce=lambda c: ["--batch-sizes", AUTO if c.batch_size_mode == AUTO else str(c.batch_size)]),
    A("batch_size_mode", str, "`fixed` (`--batch-sizes N` or the size's default) or `auto` (`--batch-sizes auto`: "
      "the largest power-of-two multiple of the size's default batch that trained a few steps without running out "
      "of memory, in the run's precision and compile mode; see `message`)", "fixed", before="fixed",
      identity=False, outside="enters through `batch_size`, which reads `auto` for a searched batch"),
    A("size", str, "`classic` (the textbook network on MNIST-scale data) or `large` (the model's preset that is "
      "chosen to be compute-bound on an H100/H200-class GPU; `dnnbench list` shows each)", "classic",
      before="classic", quiet=("", "classic"), console=True, flag="--sizes", sweep=3,
      help="comma list of classic, large (dnnbench list shows each)", flag_options={"default": "classic"},
      parse=choices.sizes, label="{}"),
    A("profile", str, "`smoke`, `quick`, `standard`, `full`: epochs come from the model's "
      "`BenchSpec.epochs[profile]` (in quick and standard a cap: see `stop_at_target`)", "quick", flag="--profile",
      label="{}",
      help="how long each model trains: epochs per profile come from its BenchSpec (`dnnbench list` shows them); "
      "quick and standard stop at the target with those epochs as a cap (quick: a small one), smoke and full train "
      "them all", flag_options={"default": "quick", "choices": PROFILES}),
    A("stop_at_target", str, "`on`: the quality run stopped at the first validation where `val/<metric>` reached "
      "the model's target (MLPerf), the profile's epochs and half the run's time limit being caps; `off`: it trained "
      "the profile's epochs (a fixed schedule). `--stop-at-target auto` (the default) is `on` in quick and standard, "
      "`off` in smoke and full", AUTO, flag="--stop-at-target",
      help="stop each quality run at the first validation that reaches the model's target (epochs per profile are "
      "then a cap): auto = on in quick and standard, off in smoke and full (fixed schedules)",
      flag_options={"default": AUTO, "choices": STOP_AT_TARGET},
      cell=lambda config: on_off(stops_at_target(config.profile, config.stop_at_target)),
      before="off",  # schema <= 4: every run trained its profile's epochs (the DQN's own stop at return 500 aside)
      label=stop_label),
    A("model_args", dict, "`--model-arg` values as a JSON object (`{}` = the model's defaults)", None, before="{}",
      label=args_label("", "model_args"), reproduce=repeated("--model-arg", "model_args")),
    A("data_args", dict, "`--data-arg` values as a JSON object (`{}` = the datamodule's defaults)", None,
      before="{}", label=args_label("data.", "data_args"), reproduce=repeated("--data-arg", "data_args")),
    A("seed", int, "the seed this run used (`--seed` + repeat index)", 0, identity=False, outside="the repeat axis",
      reproduce=lambda c: ["--seed", str(c.seed)]),
    A("repeat", int, "repeat index, 0..`--repeats`-1 (`--repeats auto`: 0..its processes - 1)", 0, identity=False,
      outside="the repeat axis",
      # outermost: every config's first process, then every config's second, ... so the machine's drift over the
      # sweep spreads over all configs, and each round forks from its own warm server (bench/launch/warm_client.py)
      sweep=1),  # its values (and the seeds) come from --repeats and --seed: bench/plan/planner.py
]
INFER_AXES = [  # what the run's inference.csv measures (bench/run/inference_curve.py): never a results.csv column
    A("infer_backends", str, "", "eager", column="", identity=False, flag="--infer-backends",
      help=f"comma list of inference backends for OUT/inference.csv: {', '.join(INFER_BACKENDS)} (default eager; "
      "with only eager at the run's batch size no inference.csv is written)", flag_options={"default": "eager"},
      parse=choices.infer_backends,
      reproduce=lambda c: ["--infer-backends", c.infer_backends] if c.infer_backends != "eager" else []),
    A("infer_batch_sizes", str, "", "", column="", identity=False, flag="--infer-batch-sizes",
      help="comma list of batch sizes for the inference backends' latency-throughput curve (default: the run's "
      "batch size)", flag_options={"default": None}, parse=choices.infer_batch_sizes,
      reproduce=lambda c: ["--infer-batch-sizes", c.infer_batch_sizes] if c.infer_batch_sizes else []),
]
AXES += INFER_AXES
LABEL_LAST = ("profile",)  # the label names the profile last: `mnist5k cpu bs64 quick`
assert set(SIZES) >= {"classic"}


def by_name() -> dict[str, Axis]:
    return {axis.name: axis for axis in AXES}


def identity_axes() -> list[Axis]:
    return [axis for axis in AXES if axis.identity]


def identity_rule() -> str:
    """The identity as results/README.md states it (generated from the table, so the docs are the code)."""
    inside = ", ".join(f"`{axis.csv}`" for axis in identity_axes())
    outside = "; ".join(f"`{axis.csv}`: {axis.outside}" for axis in AXES if not axis.identity and axis.csv)
    return (f"A config's identity is the `config` columns {inside}. The other `config` columns are not part of it "
            f"({outside}). Resume, quality drift, report labels, compare and W&B names all use it "
            "(`bench/core/config.py`, from the axes of `bench/core/axes.py`).")
