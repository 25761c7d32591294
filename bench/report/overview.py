"""Report overview (step: rows -> the first screen's table): per model and config, whether it reached its target,
its test quality, time to target, throughputs, speed-up over 32-true and memory; the best config of each model
marked."""

from __future__ import annotations

import pandas as pd

from bench.core.numbers import human, human_header
from bench.report.tables import OK, against_baseline, cells, memory_column, speedup

BEST_MARK, REACHED, MISSED = "★", "✓", "✗"
BASELINE = "baseline"
OVERVIEW_NOTE = (f"{REACHED}/{MISSED}: the run reached / missed its model's target, judged on validation as the "
                 f"run trains (MLPerf style); test quality is measured after training on the test split, so it may "
                 f"sit on either side of the target. {BEST_MARK}: the best config of a model: its target reached "
                 "soonest, or where no config reached it, the best test quality. Speed-up: train throughput over "
                 "the same config in 32-true eager. Medians of the ok repeats; details below.")


def target_cell(rows: pd.DataFrame) -> str:
    """✓/✗ with the target and the validation value it was judged on (`✓ acc ≥ 0.94 (val 0.951)`), how many
    repeats reached it when they disagree, or the failure."""
    first = rows.iloc[0]
    ok = rows[rows["status"] == OK]
    if pd.isna(first["metric_target"]):
        return "no target"
    if ok.empty:
        return f"{MISSED} {'/'.join(sorted(set(rows['status'])))}"
    relation = "≤" if first["metric_direction"] == "min" else "≥"
    goal = f"{first['metric_name']} {relation} {human(first['metric_target'])}"
    judged = ok["target_metric_value"].dropna() if "target_metric_value" in ok else pd.Series(dtype=float)
    goal += f" (val {human(judged.median())})" if len(judged) else ""  # the value it was judged on (schema >= 6)
    reached = int(rows["reached_target"].eq("yes").sum())
    if reached == len(rows):
        return f"{REACHED} {goal}"
    return f"{MISSED} {goal}" + (f" ({reached} of {len(rows)})" if reached else "")


def best_config(rows: pd.DataFrame) -> str | None:
    """The config label a model does best in: reached its target soonest, else the best median test quality; None
    for a model with one config (nothing to choose) or no ok run."""
    ok = rows[rows["status"] == OK]
    if rows["config_label"].nunique() < 2 or ok.empty:
        return None
    reached = ok[ok["reached_target"].eq("yes") & ok["time_to_target_s"].notna()]
    if not reached.empty:
        return reached.groupby("config_label")["time_to_target_s"].median().idxmin()
    quality = ok.groupby("config_label")["metric_value"].median().dropna()
    if quality.empty:
        return None
    return quality.idxmin() if ok["metric_direction"].iloc[0] == "min" else quality.idxmax()


def overview_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per model and config (models sorted, configs in sweep order) with the headline numbers."""
    memory = memory_column(frame)
    measured = ["metric_value", "time_to_target_s", "train_samples_per_s", "infer_samples_per_s", memory]
    texts = cells(frame, measured, count=False)
    speedups = {(model, label): speedup(variant, base, "train_samples_per_s")
                for model, label, variant, base in against_baseline(frame[frame["status"] == OK])}
    records = []
    for model, rows in frame.groupby("model", sort=True):
        best = best_config(rows)
        for label, config_rows in rows.groupby("config_label", sort=False):
            text = texts[(model, label)]
            is_base = (config_rows["precision"].eq("32-true") & config_rows["compile"].eq("off")).all()
            records.append({
                "model": model, "config": f"{BEST_MARK} {label}" if label == best else label,
                "target (validation)": target_cell(config_rows),
                "test quality": f"{config_rows['metric_name'].iloc[0]} {text['metric_value']}".strip(),
                human_header("time_to_target_s"): text["time_to_target_s"],
                "train (samples/s)": text["train_samples_per_s"],
                "inference (samples/s)": text["infer_samples_per_s"],
                "speed-up vs 32-true": BASELINE if is_base and text["train_samples_per_s"] else
                speedups.get((model, label), ""),
                human_header(memory): text[memory]})
    return pd.DataFrame(records)
