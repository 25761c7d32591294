"""Report tables (step: rows read through the one reader -> labels, cells and the model x config tables of
`dnnbench report`): the centre of repeats with their spread, speed-ups, provenance."""

from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd

from bench.core import config as cfg
from bench.core.columns import BY_NAME, COLUMNS, NUMERIC, Status, of_group
from bench.core.numbers import drift_words, human, human_header, step_of
from bench.core.stats import summarize, time_to_train
from bench.results.io import load_results
from bench.results.provenance import provenance

OK = Status.OK.value  # the status cell of a run that measured (report frames hold plain strings)
NOISE_MARK = "⚠"
SHORT = {"config_label": "config"}
# What another process on the device can change (quality is fixed by the seed, memory by the model).
NOISE_SENSITIVE = ({*of_group("speed"), *of_group("latency"), *of_group("energy"), "time_to_target_s",
                    "achieved_tflops", "mfu", "wall_s", "infer_achieved_tflops"} - {"timed_steps"})
GROUPS = ("quality", "speed", "latency", "memory", "cost", "energy")  # the measured groups, each its own table
DERIVED = {"cpu_mem_above_import_mb": ("memory", "MiB")}  # computed here from two columns (see `prepare`)
HIDDEN = {"metric_target"}  # shown in the quality table's metric cell instead


# ----------------------------------------------------------------------------------------------- reading
def prepare(csv_paths: list[Path]) -> pd.DataFrame:
    """All rows of all files through the one reader, with their source folder, labels and derived columns."""
    frames = []
    for path in csv_paths:
        frame = load_results(path)
        frame["source"] = str(Path(path).parent)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    for column in COLUMNS:  # older schema versions lack some: empty, never zero
        if column not in frame:
            frame[column] = float("nan") if column in NUMERIC else ""
    frame["config_label"] = varying_axes_labels(frame)
    frame["cpu_mem_above_import_mb"] = frame["peak_rss_mb"] - frame["rss_after_import_mb"]
    frame["noisy"] = frame["noise_warning"].fillna("").astype(str).str.len() > 0
    return frame


def varying_axes_labels(frame: pd.DataFrame) -> pd.Series:
    """Pivot headings from the config identity: device and precision always, other axes where a model varies them.

    Two batch sizes of one model are two columns, never repeats of one (the identity tells them apart).
    """
    always = ("device", "precision", "compile")
    constant = tuple(axis for axis in cfg.IDENTITY if axis not in always
                     and frame.groupby("model")[axis].nunique().max() <= 1)
    rows = frame.to_dict("records")
    return pd.Series([cfg.label(row, leave_out=("model", *constant)) for row in rows], index=frame.index)


# ----------------------------------------------------------------------------------------------- tables
def cell_text(values: list[float], status: str, noisy: bool, count: bool) -> str:
    """One table cell: the centre of the ok repeats ± half their range (with n when `count`), else the failure
    status (empty when not `count`: the row's `runs` cell says it); ⚠ when a run shared its device."""
    if status != OK and not values:
        return status if count else ""
    if not values:
        return ""
    centre, spread = summarize(values)
    text = human(centre)
    half = human(spread / 2, step=step_of(centre)) if spread else ""  # to the centre's last digit
    if half not in ("", "0"):  # identical repeats (a parameter count) show no ±0
        text += f" ±{half}" + (f" (n={len(values)})" if count else "")
    return text + (f" {NOISE_MARK}" if noisy else "")


def cells(frame: pd.DataFrame, columns: list[str], count: bool = True) -> dict[tuple[str, str], dict[str, str]]:
    """Every cell of a table at once: {(model, config label): {column: text}}; the failure status stands in for
    the values of a config with no ok run."""
    keys = ["model", "config_label"]
    statuses = frame.groupby(keys, sort=False)["status"].agg(lambda s: "/".join(sorted(set(s))))
    ok = frame.loc[frame["status"] == OK, [*keys, "noisy", *columns]]  # narrow: grouping a wide frame is slow
    ok_groups = dict(list(ok.groupby(keys, sort=False)))
    table = {}
    for key, status in statuses.items():
        rows = ok_groups.get(key)
        if rows is None:
            table[key] = {column: cell_text([], status, False, count) for column in columns}
            continue
        noisy = bool(rows["noisy"].any())
        table[key] = {column: cell_text(rows[column].dropna().tolist(), OK, noisy and column in NOISE_SENSITIVE,
                                        count) for column in columns}
    return table


def memory_column(frame: pd.DataFrame) -> str:
    gpu = frame.get("peak_gpu_mem_allocated_mb")
    return "peak_gpu_mem_allocated_mb" if gpu is not None and gpu.notna().any() else "peak_rss_mb"


def pivot(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Model rows x config columns."""
    labels = list(dict.fromkeys(frame["config_label"]))
    table: dict[str, dict[str, str]] = {}
    for (model, label), texts in cells(frame, [column]).items():
        table.setdefault(model, {})[label] = texts[column]
    result = pd.DataFrame.from_dict(table, orient="index").sort_index().reindex(columns=labels).fillna("")
    if column == "metric_value":
        metric = frame.groupby("model")["metric_name"].first() + " (" + \
            frame.groupby("model")["metric_direction"].first() + ")"
        result.insert(0, "metric", metric)
    result.index.name = "model"
    return result


def runs_text(rows: pd.DataFrame) -> str:
    """How many runs a table row stands on: `single run`, `n=3`, or the statuses when some failed."""
    counts = rows["status"].value_counts()
    text = "single run" if len(rows) == 1 and counts.get(OK) == 1 else \
        f"n={len(rows)}" if counts.get(OK) == len(rows) else ", ".join(f"{n} {s}" for s, n in counts.items())
    return text + (f" {NOISE_MARK} shared device" if rows["noisy"].any() else "")


def group_columns(frame: pd.DataFrame, group: str) -> tuple[list[str], list[str]]:
    """(measured, never measured) numeric columns of one group, derived ones included."""
    columns = [c for c in of_group(group) if BY_NAME[c].numeric and c not in HIDDEN]
    columns += [c for c, (g, _) in DERIVED.items() if g == group]
    ok = frame[frame["status"] == OK]
    measured = [c for c in columns if ok[c].notna().any()]
    return measured, [c for c in columns if c not in measured]


def header(column: str) -> str:
    return human_header(column, DERIVED[column][1] if column in DERIVED else None)


def config_rows(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, str]]:
    """The leading cells of every per-config table: model, config, runs (and the metric, for the quality table),
    models sorted, configs in the order the sweep ran them."""
    narrow = frame[["model", "config_label", "status", "noisy", "metric_name", "metric_direction", "metric_target"]]
    leading = {}
    for (model, label), rows in sorted(narrow.groupby(["model", "config_label"], sort=False), key=lambda g: g[0][0]):
        first = rows.iloc[0]
        target = f", target {human(first['metric_target'])}" if pd.notna(first["metric_target"]) else ""
        leading[(model, label)] = {"model": model, "config": label, "runs": runs_text(rows),
                                   "metric": f"{first['metric_name']} ({first['metric_direction']}{target})"}
    return leading


def group_table(frame: pd.DataFrame, group: str, leading: dict[tuple[str, str], dict[str, str]]
                ) -> tuple[pd.DataFrame, list[str]]:
    """One row per config: every measured column of the group (units in headers); and the group's empty columns."""
    measured, empty = group_columns(frame, group)
    texts = cells(frame, measured, count=False)
    records = []
    for key, first_cells in leading.items():
        record = first_cells if group == "quality" else {k: v for k, v in first_cells.items() if k != "metric"}
        records.append(record | {header(column): texts[key][column] for column in measured})
    return pd.DataFrame(records), empty


def speedup(variant: pd.DataFrame, base: pd.DataFrame, column: str) -> str:
    """Median ratio, with the range of ratios when both sides have repeats."""
    new, old = variant[column].dropna(), base[column].dropna()
    if new.empty or old.empty or not old.median():
        return ""
    ratio = new.median() / old.median()
    text = f"{ratio:.2f}x" if ratio >= 0.01 else f"{human(ratio)}x"
    if len(new) > 1 and len(old) > 1:  # single runs have no range (the section's note says so once)
        text += f" (range {new.min() / old.max():.2f}-{new.max() / old.min():.2f})"
    return text + (f" {NOISE_MARK}" if variant["noisy"].any() or base["noisy"].any() else "")


def against_baseline(ok: pd.DataFrame):
    """(model, variant label, variant rows, baseline rows) for each precision / compile variant of a config that
    also ran in 32-true eager: the baseline holds every other identity axis equal."""
    held = [axis for axis in cfg.IDENTITY if axis not in ("precision", "compile")]
    for key, group in ok.groupby(held, sort=True):
        base = group[(group["precision"] == "32-true") & (group["compile"] == "off")]
        if base.empty:
            continue
        for label, variant in group.groupby("config_label", sort=False):
            if not variant.index.isin(base.index).all():
                yield key[0], label, variant, base


def relative_to_baseline(frame: pd.DataFrame) -> pd.DataFrame:
    """Speed-up (train samples/s ratio) and quality drift of each precision / compile vs 32-true eager."""
    rows = []
    for model, label, variant, base in against_baseline(frame[frame["status"] == OK]):
        base_quality = base["metric_value"].median()
        drift = variant["metric_value"].median() - base_quality
        rows.append({"model": model, "variant": label,
                     "train speed-up": speedup(variant, base, "train_samples_per_s"),
                     "infer speed-up": speedup(variant, base, "infer_samples_per_s"),
                     "quality drift": drift_words(drift, base_quality, variant["metric_direction"].iloc[0])})
    return pd.DataFrame(rows)


def time_to_train_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per config with a target: MLPerf's time-to-train over its seeds (bench/core/stats.py: the olympic mean, a run
    that did not reach the target counted as the slowest), how many of its runs reached the target (failed runs count as
    not reaching it) and the fastest and slowest of those that did."""
    rows = []
    with_target = frame[frame.groupby(["model", "config_label"])["metric_target"].transform("count") > 0]
    for (model, label), group in with_target.groupby(["model", "config_label"], sort=False):
        reached = group["status"].eq(OK) & group["reached_target"].eq("yes")
        result = time_to_train([t if hit else None for t, hit in zip(group["time_to_target_s"], reached)])
        noisy = f" {NOISE_MARK}" if group["noisy"].any() else ""
        missed = result.runs - result.reached
        seconds = human(result.seconds) + noisy if result.seconds is not None else \
            f"not reached ({missed} of {result.runs} runs missed the target)"
        span = f"{human(result.fastest)} - {human(result.slowest)}" if result.reached > 1 else \
            human(result.fastest)
        rows.append({"model": model, "config": label, "runs": runs_text(group), "reached target": result.count,
                     "time to train (s)": seconds, "fastest - slowest (s)": span, "rule": result.rule})
    return pd.DataFrame(rows).sort_values("model", kind="stable") if rows else pd.DataFrame()


def other_metrics_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per model and config, the median of each secondary test metric (IS beside FID, PSNR/SSIM beside MSE)."""
    rows = []
    ok = frame[frame["status"] == OK]
    for (model, label), group in ok.groupby(["model", "config_label"], sort=True):
        values: dict[str, list[float]] = {}
        for metrics in group["other_metrics"]:
            for name, entry in metrics.items():
                values.setdefault(name, []).append(float(entry["value"]))
        if values:
            medians = " ".join(f"{name}={human(statistics.median(v))}" for name, v in values.items())
            rows.append({"model": model, "config": label, "median of repeats": medians})
    return pd.DataFrame(rows)


def provenance_table(frame: pd.DataFrame, csv_paths: list[Path]) -> pd.DataFrame:
    """Where, when and with what the rows were measured; mixed values are all listed and marked."""
    facts = {"results": [str(p) for p in csv_paths]} | provenance(frame)
    rows = []
    for fact, values in facts.items():
        values = [cudnn_version(v) for v in values] if fact == "cuDNN" else values
        mixed = len(values) > 1 and fact not in ("results", "date")
        text = "; ".join(values) + (f" {NOISE_MARK} mixed: compare with care" if mixed else "") if values \
            else "none recorded"
        rows.append({"fact": fact, "value": text})
    return pd.DataFrame(rows)


def cudnn_version(text: str) -> str:
    """torch's cuDNN number as the version people know (92400 -> 9.24.0): cuDNN 9 counts major x 10000 + minor x
    100 + patch, earlier ones major x 1000 + minor x 100 + patch."""
    if not text.isdigit():
        return text
    number_ = int(text)
    major, rest = divmod(number_, 10000 if number_ >= 90000 else 1000)
    return f"{major}.{rest // 100}.{rest % 100}"
