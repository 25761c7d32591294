"""The gpu-check verdict (step: each step's own rows, the overhead rows and the steps' records -> verdict.md, one line
per bar: MET / NOT MET / NOT CHECKED, its number and the rows it judged).

A bar judges only the rows of the step that exists to give its evidence (the sweep's rows for statuses, MFU, energy
and targets; the large step's for its MFU floor; the repeats step's for the spread). A bar whose step was cut at the
budget, skipped or failed reads NOT CHECKED with the reason, whatever rows it left; the time bar is MET only when
every step ran to its end within 6 minutes.
"""

from __future__ import annotations

import statistics
from pathlib import Path

REPEAT_PRECISION = "bf16-mixed"
RATIO_BAR = 0.95
MIN_ENERGY_WINDOW_S = 1.0  # NVML's counter integrates sparse power samples: shorter windows can be far off, or 0
TIME_BAR_S = 360.0
LARGE_MFU_FLOORS = {"transformer": 0.35, "mlp": 0.50}


def bar(name: str, met: bool | None, number: str) -> tuple[str, str, str]:
    return name, "NOT CHECKED" if met is None else ("MET" if met else "NOT MET"), number


def why_not_ran(steps: list[dict], name: str) -> str | None:
    """None when step `name` ran to its end (exit 0, or 1: a sweep with failed rows, failing tests, an unfit
    machine: facts the bars judge); else why its evidence is missing."""
    found = [step for step in steps if step["step"] == name]
    if not found:
        return f"step {name!r} not run"
    code = found[0]["exit_code"]
    if isinstance(code, str):
        return f"step {name!r} {code}"
    if code == 124:
        return f"step {name!r} cut at the budget after {found[0]['seconds']} s"
    if code not in (0, 1):
        return f"step {name!r} failed (exit {code}: {found[0].get('summary', '')[:120]})"
    return None


def named(rows) -> str:
    """The rows a bar judged, grouped by size and precision: `classic bf16-mixed: cnn (seeds 0-2), resnet`."""
    groups: dict[str, list[str]] = {}
    for (size, precision, model), group in rows.groupby(["size", "precision", "model"], sort=True):
        seeds = sorted(int(seed) for seed in group["seed"])
        suffix = f" (seeds {seeds[0]}-{seeds[-1]})" if len(seeds) > 1 else ""
        groups.setdefault(f"{size} {precision}", []).append(model + suffix)
    return "; ".join(f"{key}: {', '.join(models)}" for key, models in groups.items()) or "no rows"


def numbers(rows, column: str):
    import pandas as pd

    return pd.to_numeric(rows[column], errors="coerce") if column in rows else pd.Series(dtype=float)


def energy_read(rows):
    """Per row: a nonzero training reading over a long enough window (the timed window, or the whole fit to the
    target) and a nonzero inference reading (metered >= 1 s by bench/run/measure/energy.py)."""
    window_s = numbers(rows, "timed_steps") * numbers(rows, "batch_size") / numbers(rows, "train_samples_per_s")
    train = ((numbers(rows, "train_joules_per_sample") > 0) & (window_s >= MIN_ENERGY_WINDOW_S)) | (
        numbers(rows, "energy_to_target_j") > 0)
    return train & (numbers(rows, "infer_joules_per_sample") > 0)


def sweep_bars(rows, steps: list[dict], device: str, models: list[str], precisions: list[str]) -> list[tuple]:
    """Statuses, MFU, energy and targets, on the sweep's own rows."""
    names = [f"every {device} row ok in {', '.join(precisions)}", "MFU present and <= 1 on every sweep row",
             f"energy: nonzero over >= {MIN_ENERGY_WINDOW_S:g} s (or the fit to the target) on every sweep row",
             f"every family at its target (validation) in {', '.join(precisions)}"]
    reason = why_not_ran(steps, "sweep") or (None if rows is not None else "no results from step 'sweep'")
    if reason:
        return [bar(name, None, reason) for name in names]
    expected = len(models) * len(precisions)
    ok = rows[rows["status"] == "ok"]
    bad = [f"{r.model} {r.precision}: {r.status}" for r in rows.itertuples() if r.status != "ok"]
    mfu = numbers(ok, "mfu")
    energy = energy_read(ok)
    no_energy = ", ".join(f"{r.model} {r.precision}" for r in ok[~energy].itertuples())
    judged = f" [judged: {named(rows)}]"
    return [bar(names[0], len(ok) == expected, f"{len(ok)} of {expected} ok" + (f" ({'; '.join(bad)})" if bad else "")
                + judged),
            bar(names[1], bool(len(mfu)) and bool(mfu.notna().all() and (mfu <= 1).all()),
                f"{int(mfu.notna().sum())} of {len(mfu)} ok rows have MFU"
                + (f", max {mfu.max():.3f}" if mfu.notna().any() else "") + judged),
            bar(names[2], bool(len(energy)) and bool(energy.all()), f"{int(energy.sum())} of {len(energy)} ok rows"
                + (f" (not: {no_energy}){notes_of(ok[~energy])}" if no_energy else "") + judged),
            target_bar(names[3], rows, expected)]


def target_bar(name: str, rows, expected: int) -> tuple[str, str, str]:
    """On a GPU the quick profile (stop at the target, small caps) reaches every family's target in every precision.
    Rows that do not stop at the target (the reduced form's smoke rows) are not judged."""
    if not len(rows) or not (rows["stop_at_target"] == "on").all():
        return bar(name, None, "the rows do not stop at the target (smoke, or --stop-at-target off)")
    missed = [f"{r.model} {r.precision}" for r in rows.itertuples() if r.reached_target != "yes"]
    return bar(name, not missed and len(rows) == expected, f"{len(rows) - len(missed)} of {expected} rows"
               + (f" (not: {'; '.join(missed)})" if missed else "") + f" [judged: {named(rows)}]")


def notes_of(rows) -> str:
    notes = sorted({str(n) for n in rows.get("energy_note", []) if str(n) not in ("", "nan")})
    return f" (why not: {notes[0]})" if notes else ""


def large_bars(rows_by_step: dict, steps: list[dict]) -> list[tuple[str, str, str]]:
    """Each large model's MFU floor, on the rows of its own step (`large <model>`)."""
    bars = []
    for model, floor in LARGE_MFU_FLOORS.items():
        name, step = f"large {model} MFU >= {floor:.0%} in bf16-mixed", f"large {model}"
        rows = rows_by_step.get(step)
        reason = why_not_ran(steps, step) or (None if rows is not None else f"no results from step {step!r}")
        if reason or rows is None:
            bars.append(bar(name, None, reason or ""))
            continue
        chosen = rows[(rows["model"] == model) & (rows["status"] == "ok")]
        value = numbers(chosen, "mfu").max()
        judged = f" [judged: {named(rows[rows['model'] == model])}]"
        failed = "; ".join(f"{r.status}: {str(r.message)[:100]}" for r in rows[rows["model"] == model].itertuples()
                           if r.status != "ok")
        bars.append(bar(name, None if value != value else bool(value >= floor),
                        (f"no ok row with MFU{f' ({failed})' if failed else ''}" if value != value
                         else f"{value:.1%}") + judged))
    return bars


def repeat_bars(rows, steps: list[dict], models: list[str]) -> list[tuple[str, str, str]]:
    """Three seeds of each model in the repeats step within 3 % of their median."""
    bars = []
    for model in models:
        name = f"three repeats of {model} ({REPEAT_PRECISION}) within 3 % of their median"
        reason = why_not_ran(steps, "repeats") or (None if rows is not None else "no results from step 'repeats'")
        chosen = None if reason else rows[(rows["model"] == model) & (rows["status"] == "ok")]
        rates = [] if chosen is None else numbers(chosen, "train_samples_per_s").dropna().tolist()
        if reason or len(rates) < 3:
            bars.append(bar(name, None, reason or f"{len(rates)} ok repeat(s)"))
            continue
        middle = statistics.median(rates)
        worst = max(abs(x - middle) / middle for x in rates)
        bars.append(bar(name, worst <= 0.03, f"worst {worst:.1%} off the median of {len(rates)} [judged: "
                        f"{named(rows[rows['model'] == model])}]"))
    return bars


def overhead_bars(overhead: list[dict], steps: list[dict]) -> list[tuple[str, str, str]]:
    """The harness ratios; NOT CHECKED where the step, or any of its entries, did not measure."""
    unmeasured = [f"{r['model']}@{r['size']}: {r['status']}" for r in overhead if r.get("status") != "ok"]
    reason = why_not_ran(steps, "overhead") or ("not measured: " + "; ".join(unmeasured) if unmeasured else None)

    def ratios(name: str, key: str, chosen: list[dict]) -> tuple[str, str, str]:
        present = [(f"{r['model']}@{r['size']}", float(r[key])) for r in chosen if r.get(key) is not None]
        if reason or not present:
            return bar(name, None, reason or "no ratio measured")
        return bar(name, min(v for _, v in present) >= RATIO_BAR, ", ".join(f"{n} {v:.3f}" for n, v in present))

    large_resnet = [r for r in overhead if r["model"] == "resnet" and r["size"] == "large"]
    return [ratios(f"Trainer loop >= {RATIO_BAR}x bare Trainer (host clocks)", "runner_over_bare", overhead),
            ratios(f"model cost >= {RATIO_BAR}x expert loop (device-busy time, the module's optimizer)",
                   "device_over_expert", overhead),
            ratios(f"resnet 224² Trainer loop >= {RATIO_BAR}x expert loop (host clocks)", "runner_over_expert",
                   large_resnet)]


def check_bar(steps: list[dict], device: str) -> tuple[str, str, str]:
    """`dnnbench check` ran to its verdict line: fit (exit 0) MET, unfit (exit 1) NOT MET; a crash NOT CHECKED."""
    name = f"dnnbench check --devices {device}: machine fit to benchmark"
    reason = why_not_ran(steps, "dnnbench check")
    summary = next((s.get("summary", "") for s in steps if s["step"] == "dnnbench check"), "")
    if reason or not summary.startswith("dnnbench check:"):
        return bar(name, None, reason or f"no verdict line (last line: {summary[:120]})")
    return bar(name, "(exit 0)" in summary, summary)


def pytest_bar(steps: list[dict]) -> tuple[str, str, str]:
    reason = why_not_ran(steps, "pytest -m gpu")
    found = next((s for s in steps if s["step"] == "pytest -m gpu"), {})
    return bar("pytest -m gpu (not slow)", None if reason else found["exit_code"] == 0,
               reason or f"exit {found['exit_code']}: {found.get('summary', '')}")


def time_bar(steps: list[dict], total_s: float) -> tuple[str, str, str]:
    """MET only when every step ran to its end and the whole command took <= 6 minutes: a budget that cut a step
    kept the clock under 6 minutes by leaving evidence out."""
    name = f"the whole command within {TIME_BAR_S / 60:.0f} minutes, every step run"
    cut = [s["step"] for s in steps if s["exit_code"] == 124 or str(s["exit_code"]).startswith("skipped (budget")]
    if cut:
        return bar(name, False, f"{total_s:.0f} s, but cut at the budget: {', '.join(cut)}")
    failed = [why_not_ran(steps, s["step"]) for s in steps if why_not_ran(steps, s["step"])]
    if failed:
        return bar(name, None, f"{total_s:.0f} s; " + "; ".join(str(f) for f in failed))
    return bar(name, total_s <= TIME_BAR_S, f"{total_s:.0f} s")


def load(path: Path | None):
    from bench.results.io import ResultsError, load_results

    try:
        return load_results(path) if path is not None and path.exists() else None
    except (ResultsError, OSError):
        return None


def write_verdict(path: Path, device: str, reduced: bool, csvs: dict[str, Path], overhead: list[dict],
                  steps: list[dict], plan: dict, total_s: float) -> None:
    """verdict.md: every bar, then every step with its exit code and seconds."""
    rows = {name: load(csv) for name, csv in csvs.items()}
    models, precisions = plan["models"], plan["precisions"].split(",")
    bars = [check_bar(steps, device), *overhead_bars(overhead, steps),
            *repeat_bars(rows.get("repeats"), steps, [m for m in plan["repeat"].split(",") if m]),
            *large_bars(rows, steps), pytest_bar(steps),
            *sweep_bars(rows.get("sweep"), steps, device, models, precisions), time_bar(steps, total_s)]
    lines = [f"# gpu-check verdict: {device}" + (" (reduced CPU form: the GPU bars computed on CPU smoke rows, so "
                                                 "NOT MET is expected where a bar needs a GPU)" if reduced else ""),
             "", "| bar | verdict | number |", "|---|---|---|"]
    lines += [f"| {name} | {verdict} | {number} |" for name, verdict, number in bars]
    lines += ["", "| step | exit code | seconds | time model (s) |", "|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['exit_code']} | {s['seconds']} | {s.get('estimate_s', '')} |" for s in steps]
    path.write_text("\n".join(lines) + "\n")
