"""Numbers for people (step: measured values -> text for the console, the report and compare): 3 significant figures,
thousands separators, an SI prefix from a million on, a value below the precision of what it is compared with shown
as 0, headers with their unit once, quality drift in words."""

from __future__ import annotations

import math
from typing import Any

from bench.core.columns import BY_NAME, SI_PREFIXES

FIGURES = 3
# Name endings that spell the unit the header shows anyway (`time_to_target_s (s)` reads `time to target (s)`).
UNIT_ENDINGS = (("_samples_per_s", "samples/s"), ("_tflops", "TFLOP/s"),
                ("_ms", "ms"), ("_mb", "MiB"), ("_mhz", "MHz"), ("_j", "J"), ("_w", "W"), ("_s", "s"))


def step_of(reference: Any) -> float | None:
    """The place of the last digit 3 significant figures of `reference` show (0.962 -> 0.001); None for 0/NaN."""
    try:
        x = abs(float(reference))
    except (TypeError, ValueError):
        return None
    if not x or math.isnan(x) or math.isinf(x):
        return None
    return 10.0 ** (math.floor(math.log10(x)) - (FIGURES - 1))


def human(value: Any, signed: bool = False, step: float | None = None) -> str:
    """A number for a reader: 3 significant figures (`0.962`, `5,990`, `2.12 M`), never scientific notation;
    rounded to `step` first (the precision of what it is compared with), so float noise reads 0; empty for a
    missing value, text kept as it is."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    if math.isnan(x):
        return ""
    if step and not math.isinf(x):
        x = round(x / step) * step
    sign = "+" if signed and x > 0 else ""
    if math.isinf(x) or not x:
        return f"{sign}{x:g}" if x else "0"
    for scale, prefix in SI_PREFIXES:
        if abs(x) >= scale * (1 - 0.5 * 10 ** -FIGURES):  # 999,999 rounds to 1.00 M, never 1,000 k
            return f"{sign}{x / scale:.{FIGURES}g} {prefix}"
    digits = FIGURES - 1 - math.floor(math.log10(abs(x)))
    rounded = round(x, digits)
    if digits <= 0:
        return f"{sign}{rounded:,.0f}"
    text = f"{rounded:,.{digits}f}".rstrip("0").rstrip(".")
    return sign + text


def drift_words(drift: Any, base: Any, better: str) -> str:
    """A quality change in words: `0.012 worse`, `+0.005 better`, `no change` within the baseline's precision."""
    text = human(drift, step=step_of(base))
    if not text:
        return ""
    if text == "0":
        return "no change"
    improved = (float(drift) > 0) == (better != "min")
    return f"{text.lstrip('-')} {'better' if improved else 'worse'}"


def human_header(column: str, unit: str | None = None) -> str:
    """A column's header: words instead of snake_case, the unit once (`latency p50 (ms)`)."""
    unit = BY_NAME[column].unit if unit is None and column in BY_NAME else unit or ""
    name = column
    for ending, spelled in UNIT_ENDINGS:
        if name.endswith(ending) and spelled == unit:
            name = name[: -len(ending)]
            break
    words = name.replace("_", " ")
    if unit == "ratio" and words.endswith("fraction"):
        unit = ""  # a fraction says it is a ratio
    return f"{words} ({unit})" if unit else words
