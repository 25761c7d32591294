"""The GPU acceptance run in one prepared command (`make gpu-check OUT=dir`): every GPU step of issues 19 and 30, then
one small bundle and a verdict computed from each step's own rows (benchmarks/gpu_check_verdict.py).

    python -m benchmarks.gpu_check OUT [--device auto|cuda|cpu] [--models all] [--large-models ...]
                                       [--overhead-models ...] [--repeat-models ...] [--no-pytest]

The steps, in order of what the bars need (the long sweep last, so a short lease still judges every other bar), with
the time model they are planned by: seconds on one H100 (full form), from the code's step counts and the CPU rows.

  step                 what it runs                                              time model (s)  bars it gives
  dnnbench check       `dnnbench check --devices cuda --no-probe` (NVML lines;          10       check
                       the probe is the overhead step's)
  overhead             the harness probe (a run's child, bench/run/overhead.py) of      70       Trainer/bare,
                       cnn (3 repeats) and resnet@large (2 repeats), 32-true                     model cost, 224²
  repeats              cnn and resnet, bf16-mixed, seeds 0-2 (6 quick rows)             30       spread of repeats
  large mlp            mlp --sizes large bf16-mixed (1 row)                             13       large mlp MFU
  large transformer    transformer --sizes large bf16-mixed, --data-arg                 32       large transformer
                       num_train=16384 (its step cap: 64 steps an epoch, 384 at                  MFU
                       quick's 6 epochs, not 1536)
  pytest -m gpu        `pytest -m "gpu and not slow"` (16 tests), stopped at 90 s       60       pytest
  sweep                quick, all 12 models, 32-true and bf16-mixed (24 rows); on      130       rows ok, MFU,
                       cuda quick takes standard's epoch caps (bench/core/profiles.py),          energy, targets
                       each run's training capped at 10 s (--time-limit 20)
                                                                            total      345  (budget 345 s of 360)
How the numbers are made (estimates until a GPU run's steps.csv replaces them; verdict.md prints both):
- A run's steps do not depend on the device: the quick rows of results/reference/cpu-2core/quick/results.csv
  (`steps`) train 96-1000 steps each, 3,857 in 32-true and about as many in bf16-mixed; the speed window adds
  10 warm-up + 100 timed + 10 profiled steps where the fit is shorter (bench/run/measure/speed.py).
- Classic networks are host-bound on an H100: ~3 ms a step (Lightning's loop and a fused optimizer step; the fastest
  CPU row, dqn at 11,571 samples/s of batch 64, is 5.5 ms a step with its compute on 2 cores).
- A row's fixed cost ~3 s: the warm server's fork (< 1 s, DESIGN.md), CUDA's context in the child, the FLOP count's
  one step, inference timing at its batch sizes, the test pass (the CPU rows' wall_s less time_to_target_s: 1-2 s);
  each `dnnbench run` step adds ~5 s (imports, warm server). On cuda quick takes standard's epoch caps (so capsnet,
  resnet and gan can reach their targets: quick's own caps stop them short by construction); the families that
  reached their target at quick's caps keep those steps, capsnet, resnet and gan take their median steps to target in
  results/reference/cpu-2core/standard (315, 224 and 2,520): 5,442 steps a precision; dqn's greedy return needs a
  median 32 epochs of 1,000 steps there (~100 s of host-bound env steps), more than the lease holds, so the sweep's
  --time-limit 20 caps each run's training at 10 s (TRAIN_TIME_SHARE): a row past it (dqn; gan if its 2,520 steps
  and FID validations run slower than modelled) says so in its message and misses its target there. Sweep:
  24 x 3 + 10,900 x 0.003 + 2 x 10 (dqn) + 5 = 130 s.
- Large rows from their FLOPs at a plausible share of the bf16 peak (989 TFLOP/s dense): transformer large ~1.7e13
  FLOP a step at ~40 % = 42 ms x 384, its greedy-decoded validation (4 batches x 64 tokens an epoch, ~7 s in all)
  and 8 s; mlp large 6e12 FLOP a step at ~60 % = 10 ms x ~180 (its speed window needs a fit of its own) + 8 s.
- The probe: 3 phases x ~120 steps a repeat; cnn ~3 ms a step (10 s with its child), ResNet-18 at 224² batch 256 in
  TF32 ~90 ms a step (2 repeats: ~65 s).
- pytest: 16 tests (the large-preset, every-model MFU, auto-batch and compile/export ones are `slow`); collection
  ~15 s, the rest one quick cnn row, smoke rows and single steps.
Each step starts only if its time model fits what is left of the budget (else it is cut before it starts: NOT CHECKED,
the time bar NOT MET); a running step is stopped at the budget (a sweep keeps its finished rows), so the bundle is
always written, an interrupted command's too (Ctrl-C, SIGTERM, SIGHUP: the running step is stopped as its own
interruption would stop it and reads `interrupted`, the finished steps' bundle is written, exit 130/143/129).
On a machine without CUDA the same steps run in a reduced form (cpu, smoke profile, fewer models; no
time model: each step runs while budget is left) so CI keeps the command working. OUT then holds at most 8 files:
results.csv (every row of every step), overhead.csv, summary.md (the report), check.txt, pytest.txt, steps.csv (each
step's command, exit code, seconds, time model and last output line), logs.txt (the log tails of rows that were not
ok, and of each step) and verdict.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.gpu_check_bundle import pack
from benchmarks.gpu_check_verdict import REPEAT_PRECISION, write_verdict

ROOT = Path(__file__).resolve().parent.parent
LARGE_CAPS = {"transformer": ["--data-arg", "num_train=16384"]}  # the large transformer's step cap (docstring)
SWEEP_TIME_LIMIT = ["--time-limit", "20"]  # each sweep run's training capped at 10 s (the docstring's dqn)
FULL = {"profile": "quick", "precisions": "32-true,bf16-mixed", "large": "mlp,transformer",
        "overhead": "cnn,resnet@large", "repeat": "cnn,resnet", "check": "--no-probe", "large_caps": LARGE_CAPS}
# The reduced CPU form keeps every step working in a few minutes on 2 cores: fewer models where a step repeats; smoke
# sizes its large rows small already (a cap would be more steps than smoke's data).
REDUCED = FULL | {"profile": "smoke", "overhead": "mlp", "repeat": "cnn", "large_caps": {}}
# The time model (seconds on one H100, the module docstring's table); the reduced form has none (0: run if any is left).
TIME_MODEL_S: dict[str, float] = {"dnnbench check": 10, "overhead": 70, "repeats": 30, "large mlp": 13,
                                  "large transformer": 32, "pytest -m gpu": 60, "sweep": 130}
OVERHEAD_REPEATS = {"classic": 3, "large": 2}
PYTEST_LIMIT_S = 90.0
STOP_GRACE_S = 10.0  # an interrupted or late step's own clean-up (a sweep ends its runs and warm server) before a kill
# 6 minutes less the start (imports) and the packing (report, verdict); 5 minutes on a CPU.
BUDGET_S = {"cuda": 345.0, "cpu": 270.0}


@dataclass
class Deadline:
    """The seconds left of the command's budget, and the time model the steps are planned by (empty: none)."""

    seconds: float
    model: dict[str, float]

    def __post_init__(self) -> None:
        self.end = time.perf_counter() + self.seconds

    def left(self) -> float:
        return self.end - time.perf_counter()

    def refuses(self, step: str) -> str | None:
        """Why `step` must not start now (its time model does not fit what is left), or None."""
        need, left = self.model.get(step, 0.0), self.left()
        if left <= 0:
            return "skipped (budget spent)"
        if need > left:
            return f"skipped (budget: the time model needs {need:g} s, {left:.0f} s left)"
        return None


def run_step(name: str, command: list[str], log: Path, steps: list[dict], deadline: Deadline,
             limit_s: float | None = None) -> int:
    """Run one step as a subprocess, its output into `log`, stopped at the deadline (or `limit_s`; a sweep keeps its
    finished rows, its runs die with it); a step that fails or runs out of time never stops the others."""
    env = dict(os.environ) | {"PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    started, record = time.perf_counter(), {"step": name, "command": " ".join(command),
                                            "estimate_s": deadline.model.get(name, "")}
    refused = deadline.refuses(name)
    if refused:
        steps.append(record | {"exit_code": refused, "seconds": 0})
        print(f"gpu-check: {name}: {refused}", flush=True)
        return 124
    print(f"gpu-check: {name}: {' '.join(command)}", flush=True)
    with open(log, "a") as out:
        step = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            code = step.wait(timeout=min(deadline.left(), limit_s or float("inf")))
        except subprocess.TimeoutExpired:
            code = 124  # stopped at the deadline
            stop_step(step)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (main): the step stops as it would alone, then this
            stop_step(step)
            steps.append(record | {"exit_code": f"interrupted ({stop.args[0] if stop.args else 'SIGINT'})",
                                   "seconds": round(time.perf_counter() - started, 1)})
            raise
    seconds = time.perf_counter() - started
    last = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
    steps.append(record | {"exit_code": code, "seconds": round(seconds, 1),
                           "summary": last[0].strip()[:200] if last else ""})
    print(f"gpu-check: {name}: exit {code} after {seconds:.0f} s", flush=True)
    return code


def stop_step(step: subprocess.Popen) -> None:
    """Stop a step as its own interruption would (SIGTERM: a sweep keeps its finished rows and ends its runs and
    warm server), killed STOP_GRACE_S later if it has not ended."""
    step.terminate()
    try:
        step.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        step.kill()
        step.wait()


def sweep(name: str, work: Path, steps: list[dict], deadline: Deadline, device: str, models: str,
          args: list[str], csvs: dict[str, Path]) -> Path:
    """A `dnnbench run` step; its results CSV is in `csvs` before it starts (an interrupted sweep keeps its rows)."""
    out = work / name.replace(" ", "-")
    csvs[name] = out / "results.csv"
    run_step(name, [sys.executable, "-m", "bench", "run", "--models", models, "--devices", device, "--wandb",
                    "disabled", "--no-progress", "--out", str(out), *args], work / f"{out.name}.log", steps, deadline)
    return out / "results.csv"


def overhead_rows(device: str, profile: str, models: list[str], work: Path, deadline: Deadline,
                  repeats: int | None = None, rows: list[dict] | None = None) -> list[dict]:
    """Each `model[@size]` through the check's probe (a run's child forked from the warm server): medians of the
    runner's speed window, the bare Trainer and the expert loop, their ratios and the runner's spread; `repeats`
    by size (OVERHEAD_REPEATS) unless given. Appended to `rows` as each ends (an interruption keeps them)."""
    from bench.check.command import run_probe
    from bench.run.overhead import runner_config

    rows = [] if rows is None else rows
    for entry in models:
        model, _, size = entry.partition("@")
        size = size or "classic"
        if deadline.left() <= 0:
            rows.append({"model": model, "size": size, "device": device, "status": "skipped (budget)"})
            continue
        config = runner_config(model, profile, device, {}, size=size, time_limit_s=deadline.left())
        row, measured = run_probe(config, work / "overhead", repeats or OVERHEAD_REPEATS[size])
        record = {"model": model, "size": size, "device": device, "status": row.get("status"),
                  "message": (row.get("message") or "")[:300]}
        if measured is not None:
            record |= {key: median(getattr(measured, key)) for key in ("runner", "bare", "expert", "device_cost",
                                                                       "expert_device_cost")}
            record |= {"runner_over_bare": measured.runner_over_bare(), "spread": measured.spread(),
                       "device_over_expert": measured.device_over_expert(),
                       "runner_over_expert": measured.runner_over_expert()}
        rows.append(record)
        print(f"gpu-check: overhead {entry}: {record}", flush=True)
    return rows


def median(values: list) -> float | None:
    import statistics

    present = [v for v in values if v]
    return statistics.median(present) if present else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for the bundle (at most 8 files)")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"),
                        help="auto: cuda where present (the full form), else cpu (the reduced form)")
    parser.add_argument("--models", default="all", help="models of the sweep")
    parser.add_argument("--large-models", default=None, help=f"large rows, empty to skip (default: {FULL['large']})")
    parser.add_argument("--overhead-models", default=None, help=f"model[@size] (default: {FULL['overhead']})")
    parser.add_argument("--overhead-repeats", type=int, default=None, help="probe repeats (default: by size, "
                        + ", ".join(f"{size} {n}" for size, n in OVERHEAD_REPEATS.items()) + ")")
    parser.add_argument("--repeat-models", default=None, help=f"empty to skip (default: {FULL['repeat']})")
    parser.add_argument("--check-args", default=None, help="arguments of `dnnbench check` besides --devices "
                        f"(default: {FULL['check']})")
    parser.add_argument("--no-pytest", action="store_true", help="skip pytest -m gpu")
    parser.add_argument("--budget-s", type=float, default=None, help="seconds the steps may take before the rest "
                        "are skipped (default: " + ", ".join(f"{d} {s:g}" for d, s in BUDGET_S.items()) + ")")
    return parser.parse_args(argv)


def chosen_plan(args: argparse.Namespace, device: str) -> dict:
    """The form's plan with the command line's choices in it (models: the sweep's list)."""
    import lightning_modules

    plan = dict(REDUCED if device == "cpu" else FULL)
    for key, value in (("large", args.large_models), ("overhead", args.overhead_models),
                       ("repeat", args.repeat_models), ("check", args.check_args)):
        plan[key] = value if value is not None else plan[key]
    plan["models"] = lightning_modules.names() if args.models == "all" else args.models.split(",")
    return plan


def run_steps(args: argparse.Namespace, device: str, plan: dict, work: Path, deadline: Deadline,
              done: Done | None = None) -> tuple[dict[str, Path], list[dict], list[dict]]:
    """Every step in the time model's order (the long sweep last). Returns (each sweep step's results CSV, the
    overhead rows, the steps' records), kept in `done` as they come (what an interruption leaves)."""
    import shlex

    done = done or Done()
    steps, csvs = done.steps, done.csvs
    profile = ["--profile", plan["profile"]]
    run_step("dnnbench check", [sys.executable, "-m", "bench", "check", "--devices", device,
                                *shlex.split(plan["check"])], work / "check.txt", steps, deadline)
    started, refused = time.perf_counter(), deadline.refuses("overhead")
    chosen = [m for m in plan["overhead"].split(",") if m]
    overhead = done.overhead
    try:
        if not refused:
            overhead_rows(device, plan["profile"], chosen, work, deadline, args.overhead_repeats, overhead)
    except KeyboardInterrupt as stop:
        steps.append({"step": "overhead", "command": f"bench.check.command.run_probe {plan['overhead']}",
                      "exit_code": f"interrupted ({stop.args[0] if stop.args else 'SIGINT'})",
                      "seconds": round(time.perf_counter() - started, 1)})
        raise
    statuses = {row["status"] for row in overhead}
    steps.append({"step": "overhead", "command": f"bench.check.command.run_probe {plan['overhead']}",
                  "estimate_s": deadline.model.get("overhead", ""), "seconds": round(time.perf_counter() - started, 1),
                  "exit_code": refused or ("skipped (none chosen)" if not chosen else "skipped (budget spent)"
                                           if statuses <= {"skipped (budget)"} else int(statuses != {"ok"}))})
    if plan["repeat"]:
        sweep("repeats", work, steps, deadline, device, plan["repeat"],
              profile + ["--precisions", REPEAT_PRECISION, "--seed", "0", "--repeats", "3"], csvs)
    for model in [m for m in plan["large"].split(",") if m]:
        sweep(f"large {model}", work, steps, deadline, device, model, profile + [
            "--sizes", "large", "--precisions", "bf16-mixed", *plan["large_caps"].get(model, [])], csvs)
    if device == "cpu":  # the gpu tests need CUDA (they are not skipped without it)
        steps.append({"step": "pytest -m gpu", "command": "", "exit_code": "skipped (no CUDA)", "seconds": 0})
    elif not args.no_pytest:
        run_step("pytest -m gpu", [sys.executable, "-m", "pytest", "-m", "gpu and not slow", "-q", "-p",
                                   "no:cacheprovider"], work / "pytest.txt", steps, deadline, PYTEST_LIMIT_S)
    capped = SWEEP_TIME_LIMIT if device == "cuda" else []
    sweep("sweep", work, steps, deadline, device, ",".join(plan["models"]),
          profile + ["--precisions", plan["precisions"], *capped], csvs)
    return csvs, overhead, steps


@dataclass
class Done:
    """What the steps have left so far: each sweep step's results CSV, the overhead rows, the steps' records."""

    csvs: dict[str, Path] = field(default_factory=dict)
    overhead: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)


def interrupt(signum: int, frame) -> None:
    """SIGTERM (and SIGHUP) as Ctrl-C: the running step is stopped and the finished steps' bundle written."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Exit 0 once the bundle is written, whatever the verdict says (the verdict is the result); interrupted (Ctrl-C,
    SIGTERM, SIGHUP), the running step is stopped, the finished steps' bundle written, and the exit is 130/143/129."""
    import torch

    args = parse_args(argv)
    started = time.perf_counter()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    plan = chosen_plan(args, device)
    args.out.mkdir(parents=True, exist_ok=True)
    done, stopped = Done(), None
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        try:
            deadline = Deadline(args.budget_s or BUDGET_S[device], TIME_MODEL_S if device == "cuda" else {})
            run_steps(args, device, plan, work, deadline, done)
        except KeyboardInterrupt as stop:
            stopped = stop.args[0] if stop.args else "SIGINT"
            end_runs()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the bundle is written whatever comes now
            signal.signal(signum, signal.SIG_IGN)
        pack(args.out, work, list(done.csvs.values()), done.overhead, done.steps)
        write_verdict(args.out / "verdict.md", device, device == "cpu", done.csvs, done.overhead, done.steps, plan,
                      time.perf_counter() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print((args.out / "verdict.md").read_text())
    print(f"gpu-check: bundle in {args.out} ({len(list(args.out.iterdir()))} files), "
          f"{time.perf_counter() - started:.0f} s" + (f"; stopped by {stopped}: the steps after it did not run"
                                                     if stopped else ""))
    return 128 + signal.Signals[stopped].value if stopped else 0


def end_runs() -> None:
    """The overhead step's runs are children of this process: killed with their trees, and the warm server. The
    launcher then starts runs again: this process may go on (a caller of main, a test) and its later runs must not
    be killed as they start."""
    from bench.launch.child_process import kill_running, stopping
    from bench.launch.warm_client import stop_warm_server

    kill_running()
    stop_warm_server()
    stopping.clear()


if __name__ == "__main__":
    sys.exit(main())
