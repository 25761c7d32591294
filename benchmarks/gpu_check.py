"""The GPU acceptance run in one prepared command (`make gpu-check OUT=dir`): every GPU step of issue 19, then one
small bundle and a verdict computed from its CSVs.

    python -m benchmarks.gpu_check OUT [--device auto|cuda|cpu] [--models all] [--large-models ...]
                                       [--overhead-models ...] [--repeat-models ...] [--no-pytest]

On a GPU (the full form, sized for 6 minutes on one H100), in order of what the verdict needs most:
  1. dnnbench check --devices cuda
  2. the quick sweep of every model in 32-true, bf16-mixed and 16-mixed
  3. --sizes large bf16-mixed rows of transformer, mlp, resnet, lstm (MFU)
  4. the overhead ratios (runner / bare Trainer / expert loop, bench/run/overhead.py through the launch path, 3 repeats)
     of mlp, cnn, resnet and resnet large
  5. two more seeds of cnn and resnet in bf16-mixed: with step 2's row, three repeats for the spread
  6. pytest -m gpu (the gpu tests need CUDA: skipped in the reduced form)
Steps run within a budget (BUDGET_S): past it the rest are skipped and a running one is stopped (a sweep keeps its
finished rows), so the bundle is always written. On a machine without CUDA the same steps run in a reduced form
(cpu, smoke profile, 32-true and bf16-mixed, fewer models where a step repeats) so CI keeps the command working.
OUT then holds at most 8 files: results.csv (every row of steps 2, 3, 5), overhead.csv, summary.md (the report),
check.txt, pytest.txt, steps.csv (each step's command, exit code, seconds and last output line), logs.txt (the log
tails of rows that were not ok, and of each step) and verdict.md (each GPU bar MET / NOT MET with its number; the
quick rows' bar: every family reaches its target in every precision).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FULL = {"profile": "quick", "precisions": "32-true,bf16-mixed,16-mixed", "large": "transformer,mlp,resnet,lstm",
        "overhead": "mlp,cnn,resnet,resnet@large", "repeat": "cnn,resnet"}
# The reduced CPU form keeps every step working in a few minutes on 2 cores: fewer models where a step repeats.
REDUCED = FULL | {"profile": "smoke", "precisions": "32-true,bf16-mixed", "large": "mlp,transformer",
                  "overhead": "mlp", "repeat": "cnn"}
REPEAT_PRECISION = "bf16-mixed"
# Steps run until this many seconds after the start, then the rest are skipped (and a running one is stopped, keeping
# its finished rows), so the bundle is always written: 6 minutes on a GPU less the packing; 5 minutes on a CPU.
BUDGET_S = {"cuda": 330.0, "cpu": 270.0}


class Deadline:
    """The seconds left of the command's budget."""

    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()
OVERHEAD_FIELDS = ("model", "size", "device", "status", "runner", "bare", "expert", "device_cost", "runner_over_bare",
                   "device_over_expert", "runner_over_expert", "spread", "message")


def run_step(name: str, command: list[str], log: Path, steps: list[dict], deadline: Deadline) -> int:
    """Run one step as a subprocess, its output into `log`, stopped at the deadline (a sweep keeps its finished
    rows; its runs die with it); a step that fails or runs out of time never stops the others."""
    env = dict(os.environ) | {"PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    started = time.perf_counter()
    if deadline.left() <= 0:
        steps.append({"step": name, "command": " ".join(command), "exit_code": "skipped (budget spent)",
                      "seconds": 0})
        return 124
    print(f"gpu-check: {name}: {' '.join(command)}", flush=True)
    with open(log, "a") as out:
        try:
            code = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
                                  timeout=deadline.left()).returncode
        except subprocess.TimeoutExpired:
            code = 124  # stopped at the deadline
    seconds = time.perf_counter() - started
    last = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
    steps.append({"step": name, "command": " ".join(command), "exit_code": code, "seconds": round(seconds, 1),
                  "summary": last[0].strip()[:200] if last else ""})
    print(f"gpu-check: {name}: exit {code} after {seconds:.0f} s", flush=True)
    return code


def sweep(name: str, work: Path, steps: list[dict], deadline: Deadline, device: str, models: str,
          args: list[str]) -> Path:
    out = work / name
    run_step(name, [sys.executable, "-m", "bench", "run", "--models", models, "--devices", device, "--wandb",
                    "disabled", "--no-progress", "--out", str(out), *args], work / f"{name}.log", steps, deadline)
    return out / "results.csv"


def overhead_rows(device: str, profile: str, models: list[str], work: Path, deadline: Deadline,
                  repeats: int = 3) -> list[dict]:
    """Each `model[@size]` through the check's probe (a run's child forked from the warm server): medians of the
    runner's speed window, the bare Trainer and the expert loop, their ratios and the runner's spread."""
    from bench.check.command import run_probe
    from bench.run.overhead import runner_config

    rows = []
    for entry in models:
        model, _, size = entry.partition("@")
        if deadline.left() <= 0:
            rows.append({"model": model, "size": size or "classic", "device": device, "status": "skipped (budget)"})
            continue
        config = runner_config(model, profile, device, {}, size=size or "classic", time_limit_s=deadline.left())
        row, measured = run_probe(config, work / "overhead", repeats)
        record = {"model": model, "size": size or "classic", "device": device, "status": row.get("status"),
                  "message": (row.get("message") or "")[:300]}
        if measured is not None:
            record |= {key: median(getattr(measured, key)) for key in ("runner", "bare", "expert", "device_cost")}
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


# ----------------------------------------------------------------------------------------------- the verdict
def bar(name: str, met: bool | None, number: str) -> tuple[str, str, str]:
    return name, "NOT CHECKED" if met is None else ("MET" if met else "NOT MET"), number


def sweep_bars(rows, device: str, models: list[str], precisions: list[str]) -> list[tuple[str, str, str]]:
    """The bars read from the results rows: statuses, MFU, energy, the large sizes' MFU, the repeats' spread."""
    main = rows[(rows["size"] == "classic") & (rows["repeat"].astype(int) == 0) & (rows["seed"].astype(int) == 0)]
    expected = len(models) * len(precisions)
    ok = main[main["status"] == "ok"]
    bad = [f"{r.model} {r.precision}: {r.status}" for r in main.itertuples() if r.status != "ok"]
    measured = rows[rows["status"] == "ok"]
    mfu = measured["mfu"]
    energy = measured[["train_joules_per_sample", "infer_joules_per_sample"]].notna().all(axis=1)
    bars = [bar(f"every {device} row ok in {', '.join(precisions)}", len(ok) == expected,
                f"{len(ok)} of {expected} ok" + (f" ({'; '.join(bad[:6])})" if bad else "")),
            bar("MFU present and <= 1 on every row", bool(len(mfu)) and bool(mfu.notna().all() and (mfu <= 1).all()),
                f"{int(mfu.notna().sum())} of {len(mfu)} rows have MFU, max {mfu.max():.3f}" if mfu.notna().any()
                else f"0 of {len(mfu)} rows have MFU"),
            bar("energy per sample present on every row", bool(len(energy)) and bool(energy.all()),
                f"{int(energy.sum())} of {len(energy)} rows" + notes_of(measured[~energy]))]
    large = rows[(rows["size"] == "large") & (rows["precision"] == "bf16-mixed") & (rows["status"] == "ok")]
    for model, floor in (("transformer", 0.35), ("mlp", 0.50)):
        value = large.loc[large["model"] == model, "mfu"].max()  # NaN: no ok row, or no MFU (no peak known)
        bars.append(bar(f"large {model} MFU >= {floor:.0%} in bf16-mixed", None if value != value
                        else bool(value >= floor), "no MFU" if value != value else f"{value:.1%}"))
    bars += [repeat_bar(rows, model) for model in ("cnn", "resnet")]
    return bars + [target_bar(main, expected, precisions)]


def target_bar(main, expected: int, precisions: list[str]) -> tuple[str, str, str]:
    """Issue 21: on a GPU the quick profile (stop at the target, small caps) reaches every family's target in every
    precision. Rows that do not stop at the target (the reduced form's smoke rows) are not judged."""
    name = f"every family at its target (validation) in {', '.join(precisions)}"
    if not len(main) or not (main["stop_at_target"] == "on").all():
        return bar(name, None, "the rows do not stop at the target (smoke, or --stop-at-target off)")
    reached = main[main["reached_target"] == "yes"]
    missed = [f"{r.model} {r.precision}" for r in main.itertuples() if r.reached_target != "yes"]
    return bar(name, len(reached) == expected, f"{len(reached)} of {expected} rows"
               + (f" (not: {'; '.join(missed[:6])})" if missed else ""))


def notes_of(rows) -> str:
    notes = sorted({str(n) for n in rows.get("energy_note", []) if str(n) not in ("", "nan")})
    return f" (why not: {notes[0]})" if notes else ""


def repeat_bar(rows, model: str) -> tuple[str, str, str]:
    import statistics

    chosen = rows[(rows["model"] == model) & (rows["size"] == "classic") & (rows["precision"] == REPEAT_PRECISION)
                  & (rows["status"] == "ok")]["train_samples_per_s"].dropna().tolist()
    name = f"three repeats of {model} ({REPEAT_PRECISION}) within 3 % of their median"
    if len(chosen) < 3:
        return bar(name, None, f"{len(chosen)} ok repeat(s)")
    middle = statistics.median(chosen)
    worst = max(abs(x - middle) / middle for x in chosen)
    return bar(name, worst <= 0.03, f"worst {worst:.1%} off the median of {len(chosen)}")


def overhead_bars(overhead: list[dict]) -> list[tuple[str, str, str]]:
    def ratios(key: str, chosen: list[dict]) -> tuple[bool | None, str]:
        values = [(f"{r['model']}@{r['size']}", r.get(key)) for r in chosen]
        present = [(n, v) for n, v in values if v is not None]
        if not present:
            return None, "no ratio measured"
        return min(v for _, v in present) >= 0.95, ", ".join(f"{n} {v:.3f}" for n, v in present)

    classic = [r for r in overhead if r["size"] == "classic"]
    large_resnet = [r for r in overhead if r["model"] == "resnet" and r["size"] == "large"]
    return [bar("Trainer loop >= 0.95x bare Trainer", *ratios("runner_over_bare", overhead)),
            bar("model cost >= 0.95x expert loop", *ratios("device_over_expert", overhead)),
            bar("resnet 224² Trainer loop >= 0.95x expert loop", *ratios("runner_over_expert", large_resnet)),
            ("(classic models: Trainer loop / expert loop, for reference)", "",
             ratios("runner_over_expert", classic)[1])]


def write_verdict(path: Path, device: str, reduced: bool, results: Path, overhead: list[dict], steps: list[dict],
                  models: list[str], precisions: list[str], total_s: float) -> None:
    from bench.results.io import ResultsError, load_results

    try:
        rows = load_results(results)
        bars = sweep_bars(rows, device, models, precisions)
    except (ResultsError, OSError, KeyError) as exc:
        bars = [bar("results", None, f"no results to judge ({exc})")]
    bars += overhead_bars(overhead)
    bars.append(bar("the whole command within 6 minutes", total_s <= 360, f"{total_s:.0f} s"))
    tested = [step for step in steps if step["step"] == "pytest -m gpu"]
    if tested:
        code = tested[0]["exit_code"]
        bars.append(bar("pytest -m gpu", None if isinstance(code, str) else code == 0,
                        f"{code}" if isinstance(code, str) else f"exit {code}: {tested[0].get('summary', '')}"))
    lines = [f"# gpu-check verdict: {device}" + (" (reduced CPU form: the GPU bars computed on CPU smoke rows, so "
                                                 "NOT MET is expected where a bar needs a GPU)" if reduced else ""),
             "", "| bar | verdict | number |", "|---|---|---|"]
    lines += [f"| {name} | {verdict} | {number} |" for name, verdict, number in bars]
    lines += ["", "| step | exit code | seconds |", "|---|---|---|"]
    lines += [f"| {s['step']} | {s['exit_code']} | {s['seconds']} |" for s in steps]
    path.write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------- the bundle
def merge_results(csvs: list[Path], target: Path) -> None:
    """Every sweep's rows in one CSV (one dnnbench wrote them all: the same columns)."""
    import pandas as pd

    frames = [pd.read_csv(path, dtype=str, keep_default_na=False) for path in csvs if path.exists()]
    if frames:
        pd.concat(frames, ignore_index=True).to_csv(target, index=False)


def failed_logs(work: Path, target: Path, lines: int = 30) -> None:
    """The log tails of every run whose row is not ok, and of every step's own output."""
    import json

    parts = []
    for result in sorted(work.glob("*/runs/*.json")):
        try:
            row = json.loads(result.read_text())
        except (OSError, ValueError):
            continue
        log = result.with_name(result.name.removesuffix(".json") + ".log")
        if isinstance(row, dict) and row.get("status") not in ("ok", None) and log.exists():
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"## {result.parent.parent.name}/{log.name}: {row.get('status')}\n" + "\n".join(tail))
    for log in sorted(work.glob("*.log")):
        parts.append(f"## step output {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
    target.write_text("\n\n".join(parts) + "\n")


def write_csv(path: Path, rows: list[dict], fields: tuple[str, ...] | list[str]) -> None:
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def pack(out: Path, work: Path, csvs: list[Path], overhead: list[dict], steps: list[dict]) -> Path:
    """OUT gets the bundle's files (at most 8); returns results.csv's path."""
    results = out / "results.csv"
    merge_results(csvs, results)
    write_csv(out / "overhead.csv", overhead, OVERHEAD_FIELDS)
    write_csv(out / "steps.csv", steps, ("step", "command", "exit_code", "seconds", "summary"))
    for name in ("check.txt", "pytest.txt"):
        if (work / name).exists():
            shutil.copy(work / name, out / name)
    failed_logs(work, out / "logs.txt")
    if results.exists():
        try:
            from bench.report.page import write_report

            write_report([results], work / "report")
            shutil.copy(work / "report" / "summary.md", out / "summary.md")
        except Exception as exc:  # the verdict and the CSVs still come back
            (out / "summary.md").write_text(f"report failed: {exc}\n")
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for the bundle (at most 8 files)")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"),
                        help="auto: cuda where present (the full form), else cpu (the reduced form)")
    parser.add_argument("--models", default="all", help="models of the sweep (step 3)")
    parser.add_argument("--large-models", default=None, help=f"step 4 (default: {FULL['large']})")
    parser.add_argument("--overhead-models", default=None, help=f"step 5, model[@size] (default: {FULL['overhead']})")
    parser.add_argument("--overhead-repeats", type=int, default=3)
    parser.add_argument("--repeat-models", default=None, help=f"step 6, empty to skip (default: {FULL['repeat']})")
    parser.add_argument("--check-args", default="", help="extra arguments of `dnnbench check` (e.g. --no-probe)")
    parser.add_argument("--no-pytest", action="store_true", help="skip pytest -m gpu")
    parser.add_argument("--budget-s", type=float, default=None, help="seconds the steps may take before the rest "
                        "are skipped (default: " + ", ".join(f"{d} {s:g}" for d, s in BUDGET_S.items()) + ")")
    return parser.parse_args(argv)


def run_steps(args: argparse.Namespace, device: str, plan: dict[str, str], work: Path, deadline: Deadline
              ) -> tuple[list[Path], list[dict], list[dict]]:
    """Every step in order of what the verdict needs most; pytest -m gpu last (its large-preset tests are the
    slowest part and no bar depends on them). Returns (results CSVs, overhead rows, steps)."""
    import shlex

    import lightning_modules

    models = lightning_modules.names() if args.models == "all" else args.models.split(",")
    chosen = {key: (value if value is not None else plan[key]) for key, value in (
        ("large", args.large_models), ("overhead", args.overhead_models), ("repeat", args.repeat_models))}
    steps: list[dict] = []
    profile = ["--profile", plan["profile"]]
    run_step("dnnbench check", [sys.executable, "-m", "bench", "check", "--devices", device,
                                *shlex.split(args.check_args)], work / "check.txt", steps, deadline)
    csvs = [sweep("sweep", work, steps, deadline, device, ",".join(models), profile + ["--precisions",
                                                                                       plan["precisions"]])]
    if chosen["large"]:
        csvs.append(sweep("large", work, steps, deadline, device, chosen["large"],
                          profile + ["--sizes", "large", "--precisions", "bf16-mixed"]))
    started = time.perf_counter()
    overhead = overhead_rows(device, plan["profile"], [m for m in chosen["overhead"].split(",") if m], work,
                             deadline, args.overhead_repeats)
    statuses = {row["status"] for row in overhead}
    steps.append({"step": "overhead", "command": f"bench.check.command.run_probe {chosen['overhead']}",
                  "exit_code": "skipped (budget spent)" if statuses == {"skipped (budget)"} else int(statuses - {"ok"}
                                                                                                    != set()),
                  "seconds": round(time.perf_counter() - started, 1)})
    if chosen["repeat"]:
        csvs.append(sweep("repeats", work, steps, deadline, device, chosen["repeat"],
                          profile + ["--precisions", REPEAT_PRECISION, "--seed", "1", "--repeats", "2"]))
    if device == "cpu":  # the gpu tests need CUDA (they are not skipped without it)
        steps.append({"step": "pytest -m gpu", "command": "", "exit_code": "skipped (no CUDA)", "seconds": 0})
    elif not args.no_pytest:
        run_step("pytest -m gpu", [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"],
                 work / "pytest.txt", steps, deadline)
    return csvs, overhead, steps


def main(argv: list[str] | None = None) -> int:
    """Exit 0 once the bundle is written, whatever the verdict says (the verdict is the result)."""
    import torch

    import lightning_modules

    args = parse_args(argv)
    started = time.perf_counter()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    plan = REDUCED if device == "cpu" else FULL
    models = lightning_modules.names() if args.models == "all" else args.models.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        csvs, overhead, steps = run_steps(args, device, plan, work,
                                          Deadline(args.budget_s if args.budget_s else BUDGET_S[device]))
        results = pack(args.out, work, csvs, overhead, steps)
        write_verdict(args.out / "verdict.md", device, device == "cpu", results, overhead, steps, models,
                      plan["precisions"].split(","), time.perf_counter() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print((args.out / "verdict.md").read_text())
    print(f"gpu-check: bundle in {args.out} ({len(list(args.out.iterdir()))} files), "
          f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
