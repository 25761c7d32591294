"""Measurement pieces (step: a trained module to its speed, inference, cost and memory columns).

Each piece returns its own typed result whose `columns()` are row cells; bench/run/session.py assembles the row.
"""

from collections.abc import Callable
from typing import Any


def best_effort(notes: list[str], what: str, measure: Callable[[], Any]) -> Any:
    """`measure()`, or None with a note in `notes` when it fails: a measurement never costs the row."""
    try:
        return measure()
    except Exception as exc:
        notes.append(f"{what} failed: {exc}".splitlines()[0])
        return None
