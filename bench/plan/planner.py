"""Planning (step: the command line -> validated configs; nothing runs, no file is touched).

Its one contact with the outside: when online W&B logging is asked for, one bounded check that W&B answers.

Every bad input is a PlanError here or in bench/plan/flags.py (each flag's own check), reported in one line with
exit 2 before the first run.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L

import datamodules
import lightning_modules
from bench.core.axes import AUTO, AXES
from bench.core.config import DEFAULT_TIME_LIMIT_S, RunConfig, matrix
from bench.core.errors import PlanError
from bench.core.profiles import PROFILES, SIZES
from bench.integrations import wandb_log
from bench.plan.flags import (
    batch_sizes,
    check_arguments,
    check_numbers,
    comma_list,
    compile_flags,
    compile_modes,
    devices,
    execution,
    key_values,
    output_folder,
    precisions,
)
from datamodules import ConfigError

# Datamodule arguments the runner sets itself, and the flag that sets them.
RUNNER_DATA_ARGS = {"batch_size": "--batch-sizes", "seed": "--seed"}


@dataclass
class Plan:
    configs: list[RunConfig]
    out: Path  # absolute: the children may resolve paths elsewhere
    parallel: int | None = 1  # runs at once on this machine; None = auto (one per GPU)
    executor: str = "local"  # local | ray
    ray_address: str | None = None


def model_classes(models: str) -> dict[str, Any]:
    names = lightning_modules.names() if models == "all" else comma_list(models, "--models")
    classes: dict[str, Any] = {}
    for name in names:
        cls = lightning_modules.get(name)
        if not hasattr(cls, "bench"):
            raise PlanError(f"model {name!r} has no `bench` spec (lightning_modules.BenchSpec): it needs its "
                            "default datamodule, metric and epochs per profile to be benchmarked")
        if not (isinstance(cls, type) and issubclass(cls, L.LightningModule)):
            raise PlanError(f"model {name!r} is not a LightningModule subclass ({cls!r})")
        epochs = cls.bench.epochs  # type: ignore[attr-defined]  # checked above: every registered model has it
        missing = [profile for profile in PROFILES if profile not in epochs]
        if missing:
            raise PlanError(f"model {name!r} names no epochs for profile(s) {', '.join(missing)} (BenchSpec.epochs "
                            f"needs every profile: {', '.join(PROFILES)})")
        twin = next((other for other, known in classes.items() if known is cls), None)
        if twin:
            raise PlanError(f"--models names the same model twice ({twin!r} and {name!r})")
        classes[name] = cls
    return classes


def sizes(text: str, classes: dict[str, Any]) -> tuple[str, ...]:
    """--sizes classic,large: each a known size that every chosen model declares."""
    chosen = tuple(comma_list(text, "--sizes"))
    unknown = [s for s in chosen if s not in SIZES]
    if unknown:
        raise PlanError(f"--sizes takes a comma list of {', '.join(SIZES)}; got {text!r}")
    for name, cls in classes.items():
        missing = [s for s in chosen if s not in cls.bench.sizes()]
        if missing:
            raise PlanError(f"model {name!r} declares no {missing[0]!r} size (BenchSpec.{missing[0]})")
    return chosen


def check_data(classes: dict[str, Any], data: list[str | None], data_args: dict, sizes: tuple[str, ...],
               profile: str) -> None:
    """Each model can take each datamodule at each size, and the datamodule takes the arguments and builds with
    them (a size's own data arguments included)."""
    clashes = sorted(set(data_args) & set(RUNNER_DATA_ARGS))
    if clashes:
        raise PlanError(f"--data-arg {clashes[0]} is the runner's own: use {RUNNER_DATA_ARGS[clashes[0]]}")
    for cls in classes.values():
        for size, dm_name in itertools.product(sizes, data):
            preset = cls.bench.size(size)
            dm_name = dm_name or preset.datamodule
            dm_class = datamodules.get(dm_name)
            check_arguments(f"datamodule {dm_name!r}", dm_class, data_args)
            extra = preset.data_kwargs(dm_name, profile)
            try:
                datamodule = dm_class(**(extra | data_args))
            except ConfigError:
                raise
            except Exception as exc:  # the user's arguments to a (maybe user's) class: report, don't trace
                reason = (traceback.format_exception_only(type(exc), exc)[-1]).strip()
                raise PlanError(f"datamodule {dm_name!r} with {data_args or 'its defaults'}: {reason}") from None
            lightning_modules.check_compatible(cls, datamodule)


def wandb_mode(requested: str | None, out: Path) -> str:
    """The W&B mode of the sweep: online only when W&B answers now, else offline, said once (W&B never costs a row)."""
    mode = requested or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    if mode == "online" and (problem := wandb_log.online_problem()):
        print(f"dnnbench: warning: W&B online logging is off for this sweep ({problem}); runs are logged offline "
              f"to {out / 'wandb'} for `wandb sync`", file=sys.stderr)
        return "offline"
    return mode


MAX_RUNS = 100_000


def plan(args: argparse.Namespace) -> Plan:
    """Turn the `run` command line into configs, or raise PlanError naming what is wrong."""
    check_numbers(args)
    classes = model_classes(args.models)
    data: list[str | None] = [None] if args.data == "default" else list(comma_list(args.data, "--data"))
    data_args, model_args = key_values(args.data_arg), key_values(args.model_arg)
    for name, cls in classes.items():
        check_arguments(f"model {name!r}", cls, model_args)
    chosen_sizes = sizes(args.sizes, classes)
    check_data(classes, data, data_args, chosen_sizes, args.profile)
    axes = (devices(args.devices), precisions(args.precisions), compile_flags(args.compile),
            batch_sizes(args.batch_sizes))
    if AUTO in axes[3] and (any(count > 1 for _, count in axes[0]) or args.num_nodes > 1):
        raise PlanError("--batch-sizes auto searches on one device (Lightning's batch size finder does not run "
                        "under DDP); give the multi-device runs a number")
    runs = len(classes) * len(data) * len(chosen_sizes) * math.prod(len(axis) for axis in axes) * args.repeats
    if runs > MAX_RUNS:  # the plan itself would exhaust memory long before the sweep ran
        raise PlanError(f"{runs} runs in one sweep (more than {MAX_RUNS}): fewer --repeats or shorter lists")
    out = output_folder(args.out or f"results/runs/{time.strftime('%Y%m%d-%H%M%S')}")
    presets = {(n, s): c.bench.size(s) for n, c in classes.items() for s in chosen_sizes}
    configs = matrix(
        list(classes), data, *axes, args.repeats, args.seed, sizes=chosen_sizes,
        default_data={key: preset.datamodule for key, preset in presets.items()},
        default_batch={key: preset.default_batch_size(args.profile) for key, preset in presets.items()},
        **{axis.name: axis.from_flag(getattr(args, axis.name)) for axis in AXES if axis.flag and not axis.sweep},
        time_limit_s=DEFAULT_TIME_LIMIT_S[args.profile] if args.time_limit is None else args.time_limit,
        data_args=data_args, model_args=model_args, peak_tflops=args.peak_tflops,
        wandb=wandb_mode(args.wandb, out), sweep_name=out.name, compile_modes=compile_modes(args.compile_mode),
        wandb_project=args.wandb_project, wandb_entity=args.wandb_entity or "",
    )
    return Plan(configs, out, **execution(args))
