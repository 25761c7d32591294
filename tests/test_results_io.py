"""bench/results_io.py: the typed row is flattened only here, and a key that is not a column is never dropped
silently (an error in tests)."""

from dataclasses import dataclass

import pytest

from bench.columns import SCHEMA_VERSION, Status
from bench.config import RunConfig
from bench.measure import Columns
from bench.results_io import UnknownColumnError, append_row, flatten, read_rows
from bench.row import Cells, RunRow

CONFIG = RunConfig(model="mlp", datamodule="mnist5k", batch_size=32)


@dataclass(frozen=True)
class Speed(Columns):
    train_samples_per_s: float


@dataclass(frozen=True)
class Misspelt(Columns):
    train_sample_per_s: float


def test_the_typed_row_flattens_config_outcome_and_pieces_in_order():
    row = RunRow(CONFIG, started_at="2026-01-01T00:00:00")
    row.add(Speed(10.0), Cells({"wall_s": 3.0}), Speed(12.0))
    row.end(Status.DIVERGED, "loss became nan")
    cells = flatten(row)
    assert cells["train_samples_per_s"] == 12.0 and cells["wall_s"] == 3.0  # the later piece wins
    assert (cells["status"], cells["message"], cells["schema_version"]) == ("diverged", "loss became nan",
                                                                            SCHEMA_VERSION)
    assert cells["reproduce"] == CONFIG.reproduce() and cells["batch_size"] == 32


def test_a_misspelt_column_is_an_error_in_tests(tmp_path):
    row = RunRow(CONFIG)
    row.add(Misspelt(10.0))
    with pytest.raises(UnknownColumnError, match="train_sample_per_s"):
        flatten(row)
    with pytest.raises(UnknownColumnError, match="bogus"):
        append_row(tmp_path / "results.csv", flatten(RunRow(CONFIG)) | {"bogus": 1})


def test_outside_tests_the_row_is_kept_and_the_unknown_column_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DNNBENCH_STRICT_COLUMNS", "0")
    row = RunRow(CONFIG, message="a note")
    row.add(Misspelt(10.0))
    cells = flatten(row)
    assert "train_sample_per_s" not in cells and cells["message"] == "a note; unknown columns train_sample_per_s"
    append_row(tmp_path / "results.csv", cells)
    (written,) = read_rows(tmp_path / "results.csv")
    assert written["status"] == "ok" and "train_sample_per_s" in written["message"]
    assert "train_sample_per_s" in capsys.readouterr().err
