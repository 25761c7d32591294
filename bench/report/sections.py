"""Report sections (step: tables -> the titled, annotated sections of `dnnbench report`, in reading order, and
the notes that head the report)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.core.columns import BY_NAME
from bench.report.overview import OVERVIEW_NOTE, overview_table
from bench.report.tables import (
    GROUPS,
    NOISE_MARK,
    OK,
    SHORT,
    config_rows,
    group_table,
    header,
    memory_column,
    other_metrics_table,
    pivot,
    provenance_table,
    relative_to_baseline,
    time_to_train_table,
)

HEADLINES = [  # (title, column, note): one model x config pivot each
    ("Quality (test metric)", "metric_value", "each model's own metric; (max) higher is better, (min) lower"),
    ("Train throughput (samples/s)", "train_samples_per_s", "higher is better"),
    ("Inference throughput (samples/s)", "infer_samples_per_s", "higher is better"),
    ("Inference latency p50 (ms)", "latency_p50_ms", "at the run's batch size; lower is better"),
    ("Peak memory (MiB)", None, "GPU max allocated where measured, else peak RSS of the run; lower is better"),
    ("Time to target (s)", "time_to_target_s", "empty: target not reached; lower is better"),
]
PROFILE_NOTES = {
    "smoke": "smoke runs a few steps per model to check that everything works: quality and time-to-target are "
             "not expected to reach the targets, and speed comes from a handful of steps. Not a benchmark result.",
    "quick": "quick trains each model until it reaches its target or a small cap (a few epochs: `dnnbench list`), "
             "so a model that did not reach its target shows how far it got; --profile standard has generous caps. "
             "Speed, latency, memory and cost are measured as in every profile.",
}
TIME_TO_TRAIN_NOTE = ("MLPerf's time-to-train over the seeds (--repeats): the olympic mean of the runs' "
                      "time-to-target (fastest and slowest dropped; with 1-2 runs the plain mean, nothing dropped). "
                      "A run that did not reach the target (or failed) counts as the slowest: one such run is "
                      "dropped, two or more leave no time. `reached target` counts them; compare gates both")


SPREAD = "train_samples_per_s_spread"
NOT_AIMING = ("smoke",)  # profiles whose runs are not trained to the targets
Section = tuple[str, str, "pd.DataFrame | None"]  # (title, note, table)


def profile_notes(frame: pd.DataFrame, profiles: tuple[str, ...] = tuple(PROFILE_NOTES)) -> list[str]:
    return [f"Profile {p}: {PROFILE_NOTES[p]}" for p in dict.fromkeys(frame["profile"]) if p in profiles]


def noise_note(frame: pd.DataFrame) -> str:
    noisy = int(frame["noisy"].sum())
    if not noisy:
        return ""
    return (f"{NOISE_MARK} {noisy} of {len(frame)} runs shared their device with other work (busy processes or "
            f"other GPU processes while they ran): their speed, latency and time numbers may be off. They are "
            f"marked {NOISE_MARK}; see 'Runs that shared their device'.")


def headline_sections(frame: pd.DataFrame) -> list[Section]:
    sections = []
    not_aiming = " ".join(profile_notes(frame, NOT_AIMING))
    for title, column, note in HEADLINES:
        column = column or memory_column(frame)
        table = pivot(frame, column)
        if column == "time_to_target_s" and not frame[column].notna().any():
            why = "not expected in this profile: see the note at the top" if not_aiming else \
                "train longer (--profile standard) or check the targets"
            sections.append((title, f"No run reached its target ({why}).", None))
            continue
        note += "; values without ± are single runs (or identical repeats)"
        if column == "metric_value" and not_aiming:
            note += ". Not trained to the targets in this profile: see the note at the top"
        sections.append((title, note, table))
    return sections


def group_sections(frame: pd.DataFrame) -> list[Section]:
    sections = []
    leading = config_rows(frame)
    for group in GROUPS:
        table, empty = group_table(frame, group, leading)
        missing = "not measured in these runs: " + ", ".join(empty) if empty else ""
        if "mfu" in empty:
            missing += " (MFU needs the device's peak: known for current GPUs, --peak-tflops elsewhere)"
        if set(table.columns) <= {"model", "config", "runs", "metric"}:  # a line, not a table of empty cells
            sections.append((f"All measurements: {group}", missing, None))
            continue
        note = "; ".join(filter(None, ["median of the ok repeats ± half their range; `runs` says how many", missing]))
        if group == "speed":  # the one column people asked about: say what it measures, from the column table
            note += f". {header(SPREAD)}: {BY_NAME[SPREAD].description}"
        sections.append((f"All measurements: {group}", note, table))
    return sections


def run_summary(frame: pd.DataFrame) -> str:
    counts = frame["status"].value_counts()
    configs = frame.groupby(["model", "config_label"]).ngroups
    return f"{len(frame)} runs of {configs} configs: " + ", ".join(f"{n} {s}" for s, n in counts.items())


def overview_section(frame: pd.DataFrame) -> Section:
    return ("Overview", OVERVIEW_NOTE, overview_table(frame))


def provenance_section(frame: pd.DataFrame, csv_paths: list[Path]) -> Section:
    return ("Provenance", "where, when and with what these rows were measured", provenance_table(frame, csv_paths))


def detail_sections(frame: pd.DataFrame) -> list[Section]:
    """The tables behind the overview, in reading order (the page folds each)."""
    sections = headline_sections(frame)
    time_to_train = time_to_train_table(frame)
    if not time_to_train.empty and frame.groupby(["model", "config_label"]).size().max() > 1:  # else = time to target
        sections.append(("Time to train over seeds", TIME_TO_TRAIN_NOTE, time_to_train))
    relative = relative_to_baseline(frame)
    if not relative.empty:
        sections.append(("Against 32-true eager", "train/inference speed-up (ratio of medians; the range over "
                         "repeats where both sides have them, none for single runs) and the test quality's change",
                         relative))
    sections += group_sections(frame)
    others = other_metrics_table(frame)
    if not others.empty:
        sections.append(("Other test metrics", "each model's secondary metrics as name=value", others))
    noisy = frame[frame["noisy"]]
    if not noisy.empty:
        sections.append(("Runs that shared their device", "what else used the machine while they ran",
                         noisy[["model", "config_label", "repeat", "noise_warning"]].rename(columns=SHORT)))
    failed = frame[frame["status"] != OK]
    if not failed.empty:
        sections.append(("Failed runs", "status and reason",
                         failed[["model", "config_label", "status", "message"]].rename(columns=SHORT)))
    return sections
