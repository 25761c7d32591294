"""Measurement pieces (step: a trained module to its speed, inference, cost and memory columns).

Each piece returns its own typed result whose `columns()` are row cells; bench/session.py assembles the row.
"""

from collections.abc import Callable
from dataclasses import fields
from typing import Any


class Columns:
    """Base of a measurement's frozen dataclass result: its field names are row columns."""

    def columns(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]  # subclasses are dataclasses


def best_effort(notes: list[str], what: str, measure: Callable[[], Any]) -> Any:
    """`measure()`, or None with a note in `notes` when it fails: a measurement never costs the row."""
    try:
        return measure()
    except Exception as exc:
        notes.append(f"{what} failed: {exc}".splitlines()[0])
        return None
