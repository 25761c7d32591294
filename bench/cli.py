"""The command line (step: argv -> the subcommand: `run` a sweep, `list` what is registered, `report`, `compare`,
`history` over commits, `check` the machine).

Exit codes: 0 done; 1 a run ended in `error` or `timeout` (run) or a metric regressed (compare; history with
--fail-on-regression); 2 bad input or an unusable file or folder, in one line on stderr before anything runs (or, for
a full disk mid-sweep, when it happens).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
import threading
from pathlib import Path
from typing import NoReturn

from bench.check import command as check
from bench.core.auto_repeats import DEFAULT_MAX_REPEATS, DEFAULT_MAX_SECONDS, DEFAULT_TARGET_PCT
from bench.core.axes import AXES, PRECISION_NAMES
from bench.core.columns import Status
from bench.core.config import DEFAULT_TIME_LIMIT_S, PROFILES, TRAIN_TIME_SHARE
from bench.core.errors import PlanError, ResultsError, SweepError, SweepInterrupted
from bench.core.profiles import DEVICE_CAPS, STOPS_AT_TARGET, epoch_cap
from bench.core.repeats_columns import REPEATS_FILE
from bench.launch.console import Console, common_label, fit, shown_path
from bench.report import compare, history
from bench.report import page as report
from registries import ConfigError


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` names every flag's default once: appended unless the help text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS:
            return text
        if action.nargs == 0:  # a switch
            return f"{text} (default: off)"
        return super()._get_help_string(action) or ""


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    for axis in AXES:  # the config axes' flags (bench/core/axes.py), then the sweep's own
        axis.add_flag(run)
    run.add_argument("--repeats", type=repeats_value, default=1, metavar="N|auto",
                     help="runs per config (seeds seed, seed+1, ...); auto: further processes of each config until "
                     "the 95 %% interval of its median train throughput is within ±--precision-target, or a cap")
    run.add_argument("--precision-target", type=float, default=None, metavar="PCT",
                     help="--repeats auto: the interval's half-width asked, in %% of the median (default: "
                     + ", ".join(f"{pct:g} on {device}" for device, pct in DEFAULT_TARGET_PCT.items()) + ")")
    run.add_argument("--max-repeats", type=int, default=None, metavar="N",
                     help=f"--repeats auto: at most this many processes per config (default: {DEFAULT_MAX_REPEATS})")
    run.add_argument("--max-repeat-seconds", type=float, default=None, metavar="S",
                     help="--repeats auto: no further process once a config's processes together would pass this "
                     f"many seconds (default: {DEFAULT_MAX_SECONDS:g})")
    run.add_argument("--seed", type=int, default=0, help="seed of the first repeat; repeat i uses seed + i")
    run.add_argument("--out", default=None, help="sweep folder (default: results/runs/<timestamp>/)")
    run.add_argument("--resume", action="store_true", help="skip configs already in OUT/results.csv")
    run.add_argument("--time-limit", type=float, default=None,
                     help="seconds per run (default: by profile, " + ", ".join(
                         f"{p} {s:g}" for p, s in DEFAULT_TIME_LIMIT_S.items()) + ")")
    run.add_argument("--wandb", default=None, choices=("offline", "online", "disabled"),
                     help="W&B mode (default: offline, or online when WANDB_API_KEY is set)")
    run.add_argument("--wandb-project", default=wandb_default("WANDB_PROJECT", "dnnbench"),
                     help="W&B project (default: $WANDB_PROJECT, else dnnbench)")
    run.add_argument("--wandb-entity", default=wandb_default("WANDB_ENTITY", None),
                     help="W&B entity, a user or team (default: $WANDB_ENTITY, else your account's default)")
    run.add_argument("--peak-tflops", type=float, default=None, help="MFU denominator in TFLOP/s, per run, all "
                     "devices (default: the device's dense peak where known; none on CPUs, so MFU stays empty)")
    run.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE",
                     help="datamodule argument, repeatable (default: the datamodule's own)")
    run.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                     help="model argument, repeatable (default: the model's own)")
    run.add_argument("--no-progress", action="store_true", help="no progress lines (result lines stay)")
    run.add_argument("--parallel", default=None, metavar="N|auto",
                     help="runs at once on this machine, each pinned to its own GPU(s) and CPU cores; auto = one "
                     "per GPU (default: 1, serial)")
    run.add_argument("--executor", default="local", choices=("local", "ray"),
                     help="local: children of this process; ray: one Ray task per run (pip install dnnbench[ray])")
    run.add_argument("--ray-address", default=None, metavar="ADDR",
                     help="Ray cluster to use with --executor ray (default: RAY_ADDRESS, else a local instance)")


def repeats_value(text: str) -> int | str:
    """--repeats: a count, or auto."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes a positive integer or auto; got {text!r}") from None


class Parser(argparse.ArgumentParser):
    """argparse whose bad input is one line and exit 2, like every other bad input (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def wandb_default(variable: str, fallback: str | None) -> str | None:
    return os.environ.get(variable) or fallback


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="dnnbench", description="Benchmark twelve deep-network families: "
                                     "quality, speed and memory in one row per run.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="sweep models x data x devices x precisions x compile",
                              description="Sweep models x sizes x data x devices x precisions x compile x batch sizes; "
                              "one row per run in OUT/results.csv, then the report and W&B runs.",
                              formatter_class=DefaultsFormatter)
    add_run_arguments(run)
    run.set_defaults(handler=command_run)
    commands.add_parser("list", help="registered models (data, metric and target, batch size, epochs per profile "
                        "and where they are a cap), "
                        "datamodules, precisions, devices here", formatter_class=DefaultsFormatter).set_defaults(
        handler=command_list)
    for module in (report, compare, history, check):
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.__doc__,
                                  formatter_class=HelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.main)
    return parser


class HelpFormatter(argparse.RawDescriptionHelpFormatter, DefaultsFormatter):
    """The module docstring as written, and defaults on every flag."""


def command_run(args: argparse.Namespace) -> int:
    """Exit 0 when every run measured something (ok, oom, diverged, ...), 1 when a run ended in error or timeout."""
    from bench.launch.repeats import repeats_advice
    from bench.launch.sweep import hold_sweep_folder, open_sweep_folder, run_sweep
    from bench.plan.planner import plan

    planned = plan(args)
    names = Console(0, show=False, configs=planned.configs + [s.config for s in planned.skipped])
    for skipped in planned.skipped:  # what this machine cannot run: no row, one line each (wrapped at 120)
        print(textwrap.fill(skipped.line(names.name(skipped.config)), 120, subsequent_indent="    ",
                            break_on_hyphens=False, break_long_words=False), file=sys.stderr)
    out = open_sweep_folder(planned.out)
    with hold_sweep_folder(out):
        common = common_label(planned.configs)
        more = " (--repeats auto: each config's first, more as needed)" if planned.auto else ""
        print(fit(f"dnnbench: {len(planned.configs)} run(s){f' of {common}' if common else ''}{more}, results -> "
                  f"{shown_path(out / 'results.csv')}"))
        rows = run_sweep(planned.configs, out, resume=args.resume, progress=not args.no_progress,
                         parallel=planned.parallel, executor=planned.executor, ray_address=planned.ray_address,
                         auto=planned.auto)
        print_table(rows)
        finish_sweep(out, planned.configs[0].wandb if planned.configs else "disabled", args.wandb_project,
                     args.wandb_entity, plan=(vars(args), planned.configs))
    print(f"dnnbench: results in {shown_path(out / 'results.csv')}")
    if planned.auto is not None:
        print(fit("dnnbench: --repeats auto: each config's interval and why it stopped in "
                  f"{shown_path(out / REPEATS_FILE)}"))
    elif advice := repeats_advice(rows, args.repeats):
        print(advice)
    if (out / "inference.csv").exists():
        print(f"dnnbench: inference backends in {shown_path(out / 'inference.csv')}")
    failed = [row for row in rows if not Status(row["status"]).measured]
    if failed:
        print(fit(f"dnnbench: {len(failed)} of {len(rows)} run(s) ended in error or timeout (why: the run lines "
                  f"above, {shown_path(out / 'runs')}/<run>.log): exit code 1"), file=sys.stderr)
        return 1
    return 0


def finish_sweep(out: Path, wandb_mode: str, project: str = "dnnbench", entity: str | None = None,
                 plan: tuple[dict, list] | None = None) -> None:
    """Report and W&B summary (configured with `plan`: the flags and the planned configs); failures here are
    warnings, the CSV is already safe on disk."""
    try:
        index = report.write_report([out / "results.csv"], out)
        print(f"dnnbench: report in {shown_path(index)}")
    except Exception as exc:
        print(f"dnnbench: warning: report not written ({exc})", file=sys.stderr)
    if wandb_mode != "disabled":
        try:
            from bench.integrations import wandb_log

            os.environ.setdefault("WANDB_INIT_TIMEOUT", wandb_log.INIT_TIMEOUT_S)  # W&B gone since the start
            wandb_log.log_sweep(out / "results.csv", out, out.name, wandb_mode, project, entity,
                                wandb_log.sweep_plan(*plan) if plan else None)
        except Exception as exc:
            print(f"dnnbench: warning: W&B sweep summary not written ({exc})", file=sys.stderr)


def print_table(rows: list[dict]) -> None:
    """The sweep's rows in the console: what varies and the headline numbers, within 120 columns."""
    from bench.launch.table import sweep_table

    if rows:
        print(sweep_table(rows))


def command_list(args: argparse.Namespace) -> int:
    import datamodules
    import lightning_modules
    from bench.launch.child_process import devices_here

    stopping = [p for p in PROFILES if STOPS_AT_TARGET[p]]
    print("models (each size: its default data, batch and constructor overrides; --sizes picks):")
    print(textwrap.fill(f"epochs per profile; * = a cap: in {' and '.join(stopping)} a quality run stops at the "
                        "first validation where val/<metric> reaches the target (--stop-at-target auto; also after "
                        f"{TRAIN_TIME_SHARE:g} x --time-limit of training), the others train every epoch. Time-to-"
                        "target counts from the start of training, set-up (the GAN's feature classifier) excluded.",
                        width=116, initial_indent="  ", subsequent_indent="  "))
    for name, cls in lightning_modules.items():
        spec = cls.bench
        epochs = " ".join(f"{p}={spec.epochs[p]}{'*' if STOPS_AT_TARGET[p] else ''}" for p in PROFILES)
        epochs += "".join(f" ({profile} on {device}: {epoch_cap(spec.epochs, profile, device)})"
                          for profile, device in DEVICE_CAPS)
        print(f"  {name:12s} task={spec.task:22s} metric={spec.metric} ({spec.metric_direction}, target "
              f"{spec.classic.metric_target:g}) epochs: {epochs}")
        for size, preset in spec.sizes().items():
            print(f"    {size:8s} {preset.describe()}")
    print("datamodules:")
    for name, cls in datamodules.items():
        kind = getattr(cls, "kind", "image|sequence (by shape)")
        print(f"  {name:18s} kind={kind:10s} {(cls.__doc__ or '').strip().splitlines()[0]}")
    print(f"precisions: {', '.join(PRECISION_NAMES)}")
    print(f"profiles:   {', '.join(PROFILES)}")
    print(f"devices here: {', '.join(devices_here())}")
    return 0


def main(argv: list[str] | None = None) -> int:
    # An import path resolves against the working directory, as `uvicorn module:app` does (dnnbench's own
    # packages still come from its install: bench/__init__.py).
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    previous = signal.signal(signal.SIGTERM, stop_by_sigterm) if in_main_thread() else None
    try:
        return run_command(build_parser().parse_args(sys.argv[1:] if argv is None else argv))
    finally:
        if argv is None and in_main_thread():  # the process's own command: it is exiting now
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, exit_at_once)
        elif previous is not None:
            signal.signal(signal.SIGTERM, previous)


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def stop_by_sigterm(signum: int, frame) -> NoReturn:
    """SIGTERM before the sweep's own handler is set (while planning) or after it: one line, exit 143."""
    raise SweepInterrupted(signum, "stopped by SIGTERM")


def exit_at_once(signum: int, frame) -> NoReturn:
    """A Ctrl-C or SIGTERM while the process exits (its exit handlers stop the warm server, flush W&B) ends it at
    once and quietly: the command already said how it ended."""
    os._exit(128 + signum)


def run_command(args: argparse.Namespace) -> int:
    """The command's handler, with every expected failure as one line on stderr and its exit code."""

    try:
        return args.handler(args)
    except (PlanError, ConfigError, SweepError, ResultsError) as exc:
        print(f"dnnbench: error: {exc}", file=sys.stderr)
        return 2
    except SweepInterrupted as exc:  # Ctrl-C / SIGTERM: one line, children already killed
        print(f"dnnbench: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dnnbench: interrupted", file=sys.stderr)
        return 130
    except ImportError as exc:  # a shared library that cannot be mapped: a memory limit (ulimit -v), a broken install
        if ".so" not in str(exc):
            raise
        print(f"dnnbench: error: cannot load {str(exc).splitlines()[0][:200]} (a memory limit such as `ulimit -v` "
              "below what torch maps at import, or a broken install)", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a vanished folder: every finished row is already on disk
        where = f" ({exc.filename})" if exc.filename else ""
        kept = "; every row written so far is kept, `--resume` continues the sweep" if args.command == "run" else ""
        print(f"dnnbench: error: {exc.strerror or exc}{where}{kept}", file=sys.stderr)
        return 2

if __name__ == "__main__":
    sys.exit(main())
