"""The results row, typed up to the writer (step: a run's config, how it ended and its measurement pieces -> one row
object, typed from the child to the writer; only bench/results/io.py turns it into cells).

Each measurement piece is a typed result whose `columns()` are its cells (bench/run/measure); the row keeps them as they
are, in the order they were measured (a later piece's cell wins, as the last measurement of a column should).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from bench.core.columns import Status
from bench.core.config import RunConfig


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


@dataclass(frozen=True)
class RunRow:
    """One run's row before the writer: its config, how it ended, the pieces measured, and the run's inference.csv
    rows (`--infer-backends`). Frozen: each step that adds to it (the child, the launcher, the sweep) builds a new one.
    """

    config: RunConfig  # its columns() and reproduce() head the row
    status: Status = Status.OK
    message: str = ""
    started_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    pieces: tuple[Piece, ...] = ()
    inference: tuple[dict[str, Any], ...] = ()  # inference.csv rows, written by the sweep before this row
    probe: dict[str, Any] | None = None  # `dnnbench check`'s harness probe (bench/run/overhead.py): in no CSV

    def __post_init__(self) -> None:  # pieces and inference rows given as lists are kept as tuples: frozen all through
        object.__setattr__(self, "pieces", tuple(self.pieces))
        object.__setattr__(self, "inference", tuple(self.inference))

    def add(self, *pieces: Piece) -> RunRow:
        return replace(self, pieces=self.pieces + pieces)

    def end(self, status: Status, message: str) -> RunRow:
        return replace(self, status=Status(status), message=message)

    def noted(self, *notes: str) -> RunRow:
        """The row with `notes` added to its message (empty notes left out)."""
        return replace(self, message="; ".join(part for part in (self.message, *notes) if part))

    def cells(self) -> dict[str, Any]:
        """The measured columns as the pieces give them (a later piece's cell wins), unchecked: for reading a cell
        (`get`); the results writer (bench/results/io.py flatten) is what checks and writes them."""
        merged: dict[str, Any] = {}
        for piece in self.pieces:
            merged |= piece.columns()
        return merged

    def get(self, column: str, default: Any = None) -> Any:
        """One cell of the row: the outcome, a measured column, or a config column."""
        outcome = {"status": self.status, "message": self.message, "started_at": self.started_at}
        return (outcome | self.config.columns() | self.cells()).get(column, default)

    def to_json(self) -> dict[str, Any]:
        """The row as JSON data, for the file the child hands the sweep: the pieces as their merged cells."""
        return {"config": self.config.to_dict(), "status": self.status.value, "message": self.message,
                "started_at": self.started_at, "cells": self.cells(), "inference": list(self.inference),
                "probe": self.probe}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRow:
        return cls(RunConfig(**data["config"]), Status(data["status"]), data["message"], data["started_at"],
                   (Cells(data["cells"]),), tuple(data.get("inference") or ()), data.get("probe"))
