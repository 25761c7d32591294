"""Planning (step: the command line -> validated configs; nothing runs, no file is touched).

Its contacts with the outside: when online W&B logging is asked for, one bounded check that W&B answers; and what
this machine can run (bench/plan/runnable.py: the GPUs it sees, whether a datamodule's files are there).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L

import datamodules
import lightning_modules
from bench.core.auto_repeats import AutoRepeats
from bench.core.axes import AUTO, AXES
from bench.core.choices import Choices, comma_list
from bench.core.config import DEFAULT_TIME_LIMIT_S, RunConfig, matrix
from bench.core.errors import PlanError
from bench.core.profiles import PROFILES
from bench.integrations import wandb_log
from bench.plan import runnable
from bench.plan.flags import auto_repeats, check_arguments, check_numbers, execution, key_values, output_folder
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
    skipped: list[runnable.Skipped] = field(default_factory=list)  # configs this machine cannot run, and why
    auto: AutoRepeats | None = None  # --repeats auto: each config's further processes are decided as it runs


def model_classes(models: str) -> dict[str, Any]:
    names = lightning_modules.names() if models == "all" else comma_list(models, "--models")
    classes: dict[str, Any] = {}
    for name in names:
        cls = lightning_modules.get(name)
        if not hasattr(cls, "bench"):
            raise PlanError(f"model {name!r} has no `bench` spec (lightning_modules.BenchSpec): it needs its "
                            "default datamodule, metric and epochs per profile to be benchmarked")
        spec = cls.bench  # (read before the check below narrows `cls` to a LightningModule, which has no spec)
        if not (isinstance(cls, type) and issubclass(cls, L.LightningModule)):
            raise PlanError(f"model {name!r} is not a LightningModule subclass ({cls!r})")
        missing = [profile for profile in PROFILES if profile not in spec.epochs]
        if missing:
            raise PlanError(f"model {name!r} names no epochs for profile(s) {', '.join(missing)} (BenchSpec.epochs "
                            f"needs every profile: {', '.join(PROFILES)})")
        twin = next((other for other, known in classes.items() if known is cls), None)
        if twin:
            raise PlanError(f"--models names the same model twice ({twin!r} and {name!r})")
        classes[name] = cls
    return classes


def check_sizes(classes: dict[str, Any], sizes: list[str]) -> None:
    """Every chosen model declares every chosen size."""
    for name, cls in classes.items():
        missing = [s for s in sizes if s not in cls.bench.sizes()]
        if missing:
            raise PlanError(f"model {name!r} declares no {missing[0]!r} size (BenchSpec.{missing[0]})")


def check_data(classes: dict[str, Any], data: list[str | None], data_args: dict, sizes: list[str],
               profile: str) -> dict[tuple[str, str, str], str]:
    """Each model can take each datamodule at each size, and the datamodule takes the arguments and builds with
    them (a size's own data arguments included). Returns (model, size, datamodule) -> why that data cannot load
    here (its files are missing), for the configs that cannot run (bench/plan/runnable.py)."""
    problems: dict[tuple[str, str, str], str] = {}
    clashes = sorted(set(data_args) & set(RUNNER_DATA_ARGS))
    if clashes:
        raise PlanError(f"--data-arg {clashes[0]} is the runner's own: use {RUNNER_DATA_ARGS[clashes[0]]}")
    for model, cls in classes.items():
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
            missing = getattr(datamodule, "missing_data", None)  # a user's datamodule may not say
            if callable(missing) and (problem := missing()):
                problems[(model, size, dm_name)] = problem
    return problems


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
    data_args, model_args = key_values(args.data_arg), key_values(args.model_arg)
    for name, cls in classes.items():
        check_arguments(f"model {name!r}", cls, model_args)
    choices = sweep_choices(args, classes)
    chosen_sizes = [choice["size"] for choice in choices["size"]]
    check_sizes(classes, chosen_sizes)
    data_problems = check_data(classes, [choice.get("datamodule") for choice in choices["datamodule"]], data_args,
                               chosen_sizes, args.profile)
    if any(c.get("batch_size_mode") == AUTO for c in choices["batch_size"]) and (
            any(c["num_devices"] > 1 for c in choices["device"]) or args.num_nodes > 1):
        raise PlanError("--batch-sizes auto searches on one device (Lightning's batch size finder does not run "
                        "under DDP); give the multi-device runs a number")
    auto = auto_repeats(args)
    repeats = 1 if auto else args.repeats  # auto: the first process of each config; the sweep decides the rest
    runs = math.prod(len(values) for values in choices.values()) * repeats  # at most: eager has one mode
    if runs > MAX_RUNS:  # the plan itself would exhaust memory long before the sweep ran
        raise PlanError(f"{runs} runs in one sweep (more than {MAX_RUNS}): fewer --repeats or shorter lists")
    choices["repeat"] = [{"seed": args.seed + repeat, "repeat": repeat} for repeat in range(repeats)]
    out = output_folder(args.out or f"results/runs/{time.strftime('%Y%m%d-%H%M%S')}")
    presets = {(n, s): c.bench.size(s) for n, c in classes.items() for s in chosen_sizes}
    configs = matrix(
        choices, default_data={key: preset.datamodule for key, preset in presets.items()},
        default_batch={key: preset.default_batch_size(args.profile) for key, preset in presets.items()},
        **{axis.name: axis.from_flag(getattr(args, axis.dest)) for axis in AXES if axis.flag and not axis.sweep},
        time_limit_s=DEFAULT_TIME_LIMIT_S[args.profile] if args.time_limit is None else args.time_limit,
        data_args=data_args, model_args=model_args, peak_tflops=args.peak_tflops,
        wandb=wandb_mode(args.wandb, out), sweep_name=out.name,
        wandb_project=args.wandb_project, wandb_entity=args.wandb_entity or "",
    )
    settings = execution(args)
    configs, skipped = runnable.split(configs, data_problems, check_devices=settings["executor"] == "local")
    return Plan(configs, out, skipped=skipped, auto=auto, **settings)


def sweep_choices(args: argparse.Namespace, classes: dict[str, Any]) -> dict[str, Choices]:
    """Each sweep axis's values from its flag's comma list, by the axis's own parser (bench/core/choices.py); the
    models from the registry. The repeats (and their seeds) come from --repeats and --seed once their count is known
    to fit."""
    choices = {axis.name: axis.parse(getattr(args, axis.dest)) for axis in AXES if axis.sweep and axis.parse}
    return choices | {"model": [{"model": name} for name in classes]}
