"""dnnbench command line: `run` a sweep, `list` what is registered, `report` and `compare` results."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench.config import DEFAULT_TIME_LIMIT_S, PRECISIONS, PROFILES, matrix, parse_device


class BadInput(ValueError):
    """Reported as one paragraph on stderr with exit code 2, before any run starts."""


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def key_values(pairs: list[str]) -> dict:
    """--data-arg key=value -> {key: value}, values parsed as Python literals where they are ones."""
    import ast

    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"expected key=value, got {pair!r}")
        try:
            parsed[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key] = {"true": True, "false": False}.get(value.lower(), value)
    return parsed


def devices_here() -> list[str]:
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda" if torch.cuda.device_count() == 1 else f"cuda ({torch.cuda.device_count()} GPUs)")
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dnnbench", description="Benchmark twelve deep-network families: "
                                     "quality, speed and memory in one row per run.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="sweep models x data x devices x precisions x compile")
    run.add_argument("--models", default="all", help="comma list of names or package.module:Class (default: all)")
    run.add_argument("--data", default="default", help="comma list of datamodules (default: each model's own)")
    run.add_argument("--devices", default="cpu", help="comma list: cpu, cuda, cpu:N, cuda:N (DDP), or auto")
    run.add_argument("--num-nodes", type=int, default=1, help="nodes for multi-node DDP (handed to Lightning)")
    run.add_argument("--precisions", default="32-true", help=f"comma list of {', '.join(PRECISIONS)}")
    run.add_argument("--compile", default="off", help="comma list of off,on (torch.compile)")
    run.add_argument("--batch-sizes", default="default", help="comma list (default: each model's own)")
    run.add_argument("--repeats", type=int, default=1, help="runs per config (seed, seed+1, ...)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--profile", default="quick", choices=PROFILES)
    run.add_argument("--out", default=None, help="sweep folder (default results/runs/<timestamp>/)")
    run.add_argument("--resume", action="store_true", help="skip configs already in OUT/results.csv")
    run.add_argument("--time-limit", type=float, default=None, help="seconds per run (default by profile)")
    run.add_argument("--wandb", default=None, choices=("offline", "online", "disabled"),
                     help="W&B mode (default: offline, or online when WANDB_API_KEY is set)")
    run.add_argument("--peak-tflops", type=float, default=None, help="MFU denominator (per run, all devices)")
    run.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE", help="datamodule argument")
    run.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE", help="model argument")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    commands.add_parser("list", help="registered models and datamodules, precisions, devices here")
    commands.add_parser("report", help="render summary.md, plots and index.html from a results CSV",
                        add_help=False)
    commands.add_parser("compare", help="compare two results CSVs; exit 1 on regressions", add_help=False)
    return parser


def plan(args: argparse.Namespace):
    """Turn the command line into configs, or raise BadInput naming what is wrong."""
    import datamodules
    import lightning_modules
    from lightning_modules import check_compatible

    names = lightning_modules.names() if args.models == "all" else comma_list(args.models)
    if not names:
        raise BadInput("no models registered and none given with --models")
    classes = {}
    for name in names:
        cls = lightning_modules.get(name)
        if not hasattr(cls, "bench"):
            raise BadInput(f"model {name!r} has no `bench` spec (lightning_modules.BenchSpec): it needs its "
                           "default datamodule, metric and epochs per profile to be benchmarked")
        classes[name] = cls
    data = [None] if args.data == "default" else comma_list(args.data)
    data_args, model_args = key_values(args.data_arg), key_values(args.model_arg)
    for cls in classes.values():
        for dm_name in data:
            dm_name = dm_name or cls.bench.default_datamodule
            extra = dict(cls.bench.datamodule_kwargs) if dm_name == cls.bench.default_datamodule else {}
            try:
                datamodule = datamodules.get(dm_name)(**(extra | data_args))
            except TypeError as exc:
                raise BadInput(f"datamodule {dm_name!r}: {exc}") from None
            check_compatible(cls, datamodule)
    device_specs = comma_list(args.devices)
    if device_specs == ["auto"]:
        import torch

        device_specs = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    try:
        devices = [parse_device(d) for d in device_specs]
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    precisions = comma_list(args.precisions)
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown:
        raise BadInput(f"unknown precision(s) {unknown}; choose from {', '.join(PRECISIONS)}")
    compile_flags = comma_list(args.compile)
    if not compile_flags or any(c not in ("off", "on") for c in compile_flags):
        raise BadInput(f"--compile takes off, on or off,on; got {args.compile!r}")
    batch_sizes: list[int | None] = [None]
    if args.batch_sizes != "default":
        try:
            batch_sizes = [int(b) for b in comma_list(args.batch_sizes)]
        except ValueError:
            raise BadInput(f"--batch-sizes must be positive integers; got {args.batch_sizes!r}") from None
        if any(b < 1 for b in batch_sizes):
            raise BadInput("--batch-sizes must be positive integers")
    if args.repeats < 1 or args.num_nodes < 1:
        raise BadInput("--repeats and --num-nodes must be at least 1")
    out = Path(args.out or f"results/runs/{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BadInput(f"output folder {out} is not writable ({exc.strerror or exc})") from None
    wandb_mode = args.wandb or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    configs = matrix(
        names, data, devices, precisions, [c == "on" for c in compile_flags], batch_sizes, args.repeats, args.seed,
        default_data={n: c.bench.default_datamodule for n, c in classes.items()},
        default_batch={n: c.bench.default_batch_size for n, c in classes.items()},
        num_nodes=args.num_nodes, profile=args.profile,
        time_limit_s=args.time_limit or DEFAULT_TIME_LIMIT_S[args.profile], data_args=data_args,
        model_args=model_args, peak_tflops=args.peak_tflops, wandb=wandb_mode, sweep_name=out.name,
    )
    return configs, out


def command_run(args: argparse.Namespace) -> int:
    from bench.sweep import run_sweep

    configs, out = plan(args)
    print(f"dnnbench: {len(configs)} run(s), profile {args.profile}, results -> {out / 'results.csv'}")
    rows = run_sweep(configs, out, resume=args.resume, progress=not args.no_progress)
    print_table(rows)
    finish_sweep(out, configs[0].wandb if configs else "disabled")
    print(f"dnnbench: results in {out / 'results.csv'}")
    return 0


def finish_sweep(out: Path, wandb_mode: str) -> None:
    """Report and W&B summary: failures here are warnings, the CSV is already safe on disk."""
    try:
        from bench import report

        index = report.write_report(out / "results.csv", out)
        print(f"dnnbench: report in {index}")
    except ImportError:
        pass
    except Exception as exc:
        print(f"dnnbench: warning: report not written ({exc})", file=sys.stderr)
    if wandb_mode != "disabled":
        try:
            from bench import wandb_log

            wandb_log.log_sweep(out / "results.csv", out, out.name, wandb_mode)
        except ImportError:
            pass
        except Exception as exc:
            print(f"dnnbench: warning: W&B sweep summary not written ({exc})", file=sys.stderr)


def print_table(rows: list[dict]) -> None:
    import pandas as pd

    if not rows:
        return
    frame = pd.DataFrame(rows)
    columns = ["model", "device", "num_devices", "precision", "compile", "status", "metric_name", "metric_value",
               "time_to_target_s", "train_samples_per_s", "infer_samples_per_s", "peak_rss_mb", "wall_s"]
    frame = frame[[c for c in columns if c in frame]]
    for column in ("metric_value", "time_to_target_s", "train_samples_per_s", "infer_samples_per_s",
                   "peak_rss_mb", "wall_s"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round(3)
    print(frame.fillna("").to_string(index=False))


def command_list() -> int:
    import datamodules
    import lightning_modules

    print("models:")
    for name, cls in lightning_modules.items():
        spec = cls.bench
        print(f"  {name:12s} task={spec.task:22s} data={spec.default_datamodule:12s} "
              f"metric={spec.metric} ({spec.metric_direction}, target {spec.metric_target:g}) "
              f"batch={spec.default_batch_size}")
    print("datamodules:")
    for name, cls in datamodules.items():
        kind = getattr(cls, "kind", "image|sequence (by shape)")
        print(f"  {name:18s} kind={kind:10s} {(cls.__doc__ or '').strip().splitlines()[0]}")
    print(f"precisions: {', '.join(PRECISIONS)}")
    print(f"profiles:   {', '.join(PROFILES)}")
    print(f"devices here: {', '.join(devices_here())}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("report", "compare"):
        from importlib import import_module

        return import_module(f"bench.{argv[0]}").cli(argv[1:])
    args = build_parser().parse_args(argv)
    from datamodules import ConfigError

    try:
        if args.command == "list":
            return command_list()
        return command_run(args)
    except (BadInput, ConfigError, FileExistsError) as exc:
        print(f"dnnbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
