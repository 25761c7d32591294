"""The convergence gate (step: a reference's seeds and a new set of seeds, read back -> MLPerf's reference
convergence point verdict, for `compare` and `history`).

MLPerf Training checks that a submission learns as the reference does (training_policies, "Reference Convergence
Points"; mlperf_logging's rcp_checker): the reference implementation is run 2N times per benchmark and batch size
(N = the submission's runs: 5 for ResNet, SSD and Mask R-CNN, 10 for BERT), and its epochs to converge give a mean
and a standard deviation (olympic: the fastest and slowest runs dropped). A submission's N runs are scored the same
way: a run that does not reach the target counts as the slowest, so one may be dropped, and more than one makes the
result invalid. Its olympic mean may not be significantly faster than the reference's: the lowest acceptable mean is
the one a one-sided, equal-variance two-sample t-test at p = 0.05 does not call faster (rcp_checker finds it by
bisection; here in closed form, the same number).

dnnbench applies this to its own rows: a reference with at least 5 runs of a benchmark (the same model, data, size,
data arguments and batch size: MLPerf's RCPs hold for any hardware and recipe, so device, precision and model
arguments such as the learning rate are what the gate tests) gives the reference distribution of the epochs and
steps to the target (`epochs` and `steps` of a run that stopped there). A new set of runs is then
  INVALID     more than one of its runs did not reach the target (one may be dropped as the slowest);
  REGRESSION  it converges significantly slower: one-sided t-test (equal variances, as rcp_checker), p < 0.05;
  check the recipe  its mean is below MLPerf's lowest acceptable mean: it converges faster than its reference;
  same        otherwise.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import pandas as pd

from bench.core import config as cfg
from bench.core.columns import Status, number

BENCHMARK = ("model", "datamodule", "size", "data_args", "batch_size")  # what an MLPerf RCP is specific to
MIN_REFERENCE_RUNS = 5
P_VALUE = 0.05
MEASURES = {"epochs": "epochs to target", "steps": "steps to target"}
FAILING = ("REGRESSION", "INVALID")  # verdicts that fail a gate (compare and history exit 1)
FASTER = "check the recipe"
FASTER_NOTE = "converges faster than its reference: check the recipe"


@dataclass(frozen=True)
class Scored:
    """One set of runs scored MLPerf's way: the olympic sample of its runs to the target, or why there is none."""

    kept: list[float]  # the runs' values after dropping the fastest and slowest (a missed run counts as the slowest)
    reached: int
    runs: int

    @property
    def invalid(self) -> bool:
        return self.runs - self.reached > 1 or (self.runs < 3 and self.reached < self.runs)

    def text(self) -> str:
        if not self.kept or self.invalid:
            return f"{self.reached} of {self.runs} reached"
        spread = f" ± {number(statistics.stdev(self.kept))}" if len(self.kept) > 1 else ""
        return f"{number(statistics.fmean(self.kept))}{spread} ({self.reached} of {self.runs} reached)"


def scored(rows: pd.DataFrame, measure: str) -> Scored:
    """MLPerf's olympic scoring of `measure` over the runs (failed runs and runs that missed the target count as
    infinitely slow)."""
    reached = rows["status"].eq(Status.OK.value) & rows["reached_target"].eq("yes") & rows[measure].notna()
    values = sorted(float(v) for v in rows.loc[reached, measure])
    ordered = values + [math.inf] * (len(rows) - len(values))
    kept = ordered[1:-1] if len(ordered) >= 3 else ordered
    return Scored([v for v in kept if math.isfinite(v)], len(values), len(rows))


def lowest_acceptable_mean(reference: Scored, runs: int) -> float:
    """MLPerf's lowest acceptable olympic mean of `runs` new kept values: the mean whose one-sided equal-variance
    t-test against the reference (its mean and standard deviation for both) sits exactly at P_VALUE."""
    from scipy.stats import t

    mean, stdev = statistics.fmean(reference.kept), statistics.stdev(reference.kept)
    if stdev == 0:
        return mean
    n_ref = len(reference.kept)
    return mean - t.ppf(1 - P_VALUE, n_ref + runs - 2) * stdev * math.sqrt(1 / n_ref + 1 / runs)


def slower_p_value(reference: Scored, new: Scored) -> float:
    """One-sided two-sample t-test (equal variances, from the sets' means and deviations as rcp_checker does) that
    the new runs take more epochs / steps than the reference."""
    from scipy.stats import ttest_ind_from_stats

    (ref_mean, ref_sd), (new_mean, new_sd) = (
        (statistics.fmean(s.kept), statistics.stdev(s.kept) if len(s.kept) > 1 else 0.0) for s in (reference, new))
    if ref_sd == 0 and new_sd == 0:  # no spread on either side (whole epochs often agree): the recipe's difference
        return 0.0 if new_mean > ref_mean else 1.0
    return float(ttest_ind_from_stats(new_mean, new_sd, len(new.kept), ref_mean, ref_sd, len(reference.kept),
                                      equal_var=True, alternative="greater").pvalue)


def verdict(reference: Scored, new: Scored) -> str:
    if new.invalid:
        return "INVALID"
    if slower_p_value(reference, new) < P_VALUE:
        return "REGRESSION"
    if statistics.fmean(new.kept) < lowest_acceptable_mean(reference, len(new.kept)):
        return FASTER
    return "same"


def usable_reference(rows: pd.DataFrame) -> bool:
    """At least MIN_REFERENCE_RUNS runs with a target, of which at most one missed it (an invalid reference gates
    nothing)."""
    if len(rows) < MIN_REFERENCE_RUNS or rows["metric_target"].isna().all():
        return False
    return len(scored(rows, "epochs").kept) >= 2 and not scored(rows, "epochs").invalid


def gate(reference: pd.DataFrame, new: pd.DataFrame, label: str) -> list[dict]:
    """The gate's rows (one per measure) for one benchmark: the reference's rows against the new set's."""
    rows = []
    for measure, name in MEASURES.items():
        base, now = scored(reference, measure), scored(new, measure)
        change = ""
        if base.kept and now.kept and not now.invalid:
            change = f"{(statistics.fmean(now.kept) / statistics.fmean(base.kept) - 1) * 100:+.1f}"
        rows.append({"config": label, "metric": f"{name} (MLPerf RCP)", "base": base.text(), "new": now.text(),
                     "change %": change, "verdict": verdict(base, now)})
    return rows


def reference_for(reference: pd.DataFrame, new_rows: pd.DataFrame) -> pd.DataFrame | None:
    """The reference runs a new config is judged against: the same config where the reference has it, else the
    reference's one config of the same benchmark; None when there is none or no single one."""
    same = reference[reference["config_id"] == new_rows["config_id"].iloc[0]]
    if not same.empty:
        return same
    key = new_rows.iloc[0][list(BENCHMARK)].tolist()
    candidates = reference[(reference[list(BENCHMARK)] == key).all(axis=1)]
    return candidates if candidates["config_id"].nunique() == 1 else None


def gate_table(reference: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Every new config whose benchmark has a usable reference (>= 5 runs), judged; an empty frame if none."""
    rows = []
    for _, new_rows in new.groupby("config_id", sort=False):
        reference_rows = reference_for(reference, new_rows)
        if reference_rows is not None and usable_reference(reference_rows):
            rows += gate(reference_rows, new_rows, cfg.label(new_rows.iloc[0].to_dict(), leave_out=()))
    return pd.DataFrame(rows)
