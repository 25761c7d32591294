"""Planning (step: the command line -> validated configs; no I/O, nothing runs).

Every bad input is a PlanError here, reported in one line with exit 2 before the first run.
"""

from __future__ import annotations

import argparse
import ast
import os
import time
from dataclasses import dataclass
from pathlib import Path

import datamodules
import lightning_modules
from bench.config import COMPILE_MODES, DEFAULT_TIME_LIMIT_S, RunConfig, matrix, parse_device
from bench.precision import PRECISIONS


class PlanError(ValueError):
    """Bad input: one line on stderr, exit code 2, before any run starts."""


@dataclass
class Plan:
    configs: list[RunConfig]
    out: Path  # absolute: the children may resolve paths elsewhere


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def key_values(pairs: list[str]) -> dict:
    """--data-arg key=value -> {key: value}, values parsed as Python literals where they are ones."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PlanError(f"expected key=value, got {pair!r}")
        try:
            parsed[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key] = {"true": True, "false": False}.get(value.lower(), value)
    return parsed


def model_classes(models: str) -> dict[str, type]:
    names = lightning_modules.names() if models == "all" else comma_list(models)
    if not names:
        raise PlanError("no models registered and none given with --models")
    classes = {}
    for name in names:
        cls = lightning_modules.get(name)
        if not hasattr(cls, "bench"):
            raise PlanError(f"model {name!r} has no `bench` spec (lightning_modules.BenchSpec): it needs its "
                            "default datamodule, metric and epochs per profile to be benchmarked")
        classes[name] = cls
    return classes


def check_data(classes: dict[str, type], data: list[str | None], data_args: dict) -> None:
    """Each model can take each datamodule, and the datamodule accepts the arguments."""
    for cls in classes.values():
        for dm_name in data:
            dm_name = dm_name or cls.bench.default_datamodule
            extra = dict(cls.bench.datamodule_kwargs) if dm_name == cls.bench.default_datamodule else {}
            try:
                datamodule = datamodules.get(dm_name)(**(extra | data_args))
            except TypeError as exc:
                raise PlanError(f"datamodule {dm_name!r}: {exc}") from None
            lightning_modules.check_compatible(cls, datamodule)


def devices(text: str) -> list[tuple[str, int]]:
    specs = comma_list(text)
    if specs == ["auto"]:
        import torch

        specs = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    try:
        return [parse_device(d) for d in specs]
    except ValueError as exc:
        raise PlanError(str(exc)) from None


def precisions(text: str) -> list[str]:
    chosen = comma_list(text)
    unknown = [p for p in chosen if p not in PRECISIONS]
    if unknown:
        raise PlanError(f"unknown precision(s) {unknown}; choose from {', '.join(PRECISIONS)}")
    return chosen


def compile_flags(text: str) -> list[bool]:
    flags = comma_list(text)
    if not flags or any(c not in ("off", "on") for c in flags):
        raise PlanError(f"--compile takes off, on or off,on; got {text!r}")
    return [c == "on" for c in flags]


def compile_modes(text: str) -> tuple[str, ...]:
    modes = tuple(comma_list(text))
    unknown = [m for m in modes if m not in COMPILE_MODES]
    if not modes or unknown:
        raise PlanError(f"--compile-mode takes a comma list of {', '.join(COMPILE_MODES)}; got {text!r}")
    return modes


def batch_sizes(text: str) -> list[int | None]:
    if text == "default":
        return [None]
    try:
        sizes = [int(b) for b in comma_list(text)]
    except ValueError:
        raise PlanError(f"--batch-sizes must be positive integers; got {text!r}") from None
    if any(b < 1 for b in sizes):
        raise PlanError("--batch-sizes must be positive integers")
    return sizes


def plan(args: argparse.Namespace) -> Plan:
    """Turn the `run` command line into configs, or raise PlanError naming what is wrong."""
    classes = model_classes(args.models)
    data = [None] if args.data == "default" else comma_list(args.data)
    data_args, model_args = key_values(args.data_arg), key_values(args.model_arg)
    check_data(classes, data, data_args)
    if args.repeats < 1 or args.num_nodes < 1:
        raise PlanError("--repeats and --num-nodes must be at least 1")
    out = Path(args.out or f"results/runs/{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    wandb_mode = args.wandb or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    configs = matrix(
        list(classes), data, devices(args.devices), precisions(args.precisions), compile_flags(args.compile),
        batch_sizes(args.batch_sizes), args.repeats, args.seed, compile_modes=compile_modes(args.compile_mode),
        default_data={n: c.bench.default_datamodule for n, c in classes.items()},
        default_batch={n: c.bench.default_batch_size for n, c in classes.items()},
        num_nodes=args.num_nodes, profile=args.profile,
        time_limit_s=args.time_limit or DEFAULT_TIME_LIMIT_S[args.profile], data_args=data_args,
        model_args=model_args, peak_tflops=args.peak_tflops, wandb=wandb_mode, sweep_name=out.name,
        channels_last=args.channels_last, matmul_precision=args.matmul_precision,
        cudnn_benchmark=args.cudnn_benchmark == "on",
        wandb_project=args.wandb_project, wandb_entity=args.wandb_entity or "",
    )
    return Plan(configs, out)
