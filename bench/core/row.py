"""The results row, typed up to the writer (step: a run's config, how it ended and its measurement pieces -> one row
object; only bench/results/io.py turns it into cells).

Each measurement piece is a typed result whose `columns()` are its cells (bench/measure); the row keeps them as they
are, in the order they were measured (a later piece's cell wins, as the last measurement of a column should).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from bench.core.columns import Status


class Piece(Protocol):
    """A measurement's typed result: its fields (or whatever `columns()` names) are row columns."""

    def columns(self) -> dict[str, Any]: ...


class Columns:
    """Base of a measurement's frozen dataclass result: its field names are row columns."""

    def columns(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]  # subclasses are dataclasses


@dataclass(frozen=True)
class Cells:
    """Columns that arrive as a mapping (the environment capture): a piece like any other."""

    values: dict[str, Any]

    def columns(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass
class RunRow:
    """One run's row before the writer: its config, how it ended, and the pieces measured."""

    config: Any  # bench.core.config.RunConfig: its columns() and reproduce() head the row
    status: Status = Status.OK
    message: str = ""
    started_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    pieces: list[Piece] = field(default_factory=list)

    def add(self, *pieces: Piece) -> None:
        self.pieces.extend(pieces)

    def end(self, status: Status, message: str) -> None:
        self.status, self.message = status, message
