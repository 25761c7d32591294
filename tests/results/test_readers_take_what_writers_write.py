"""Whatever dnnbench writes, its readers read; a number cell that is not a finite number (or a header naming a
column twice) is one line and exit 2 in `report` and `compare`, never a traceback."""

import csv
import json

import pytest

from bench.cli import main
from bench.core.columns import COLUMNS
from bench.core.errors import ResultsError
from bench.core.inference_columns import INFERENCE_COLUMNS, INFERENCE_SCHEMA_VERSION
from bench.results.io import append_row, load_inference, load_results, read_rows
from tests.results_fixtures import make_row, write_csv


def test_a_cell_past_the_csv_modules_default_limit_is_read_back(tmp_path):
    long_value = "x" * 200_000  # a --model-arg longer than csv's 131,072-character default field limit
    path = tmp_path / "results.csv"
    append_row(path, make_row(model_args=json.dumps({"note": long_value})))
    assert json.loads(read_rows(path)[0]["model_args"])["note"] == long_value
    assert len(load_results(path)) == 1


def one_line_exit_2(argv, capsys, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


@pytest.mark.parametrize("cell", ["inf", "-inf", "1e309", "NaN", "nan", "1_000"])
def test_a_number_cell_that_is_not_a_finite_number_is_one_line_and_exit_2(tmp_path, capsys, cell):
    path = write_csv(tmp_path / "results.csv", [make_row(), make_row(model="mlp", train_samples_per_s=cell)])
    fragment = f"line 3: train_samples_per_s {cell!r} is not a finite number"
    one_line_exit_2(["report", str(path), "--out", str(tmp_path / "report")], capsys, fragment)
    one_line_exit_2(["compare", str(path), str(path)], capsys, fragment)
    with pytest.raises(ResultsError, match="not a finite number"):
        read_rows(path)  # --resume


@pytest.mark.parametrize("twice", ["model", "train_samples_per_s"])
def test_a_header_naming_a_column_twice_is_one_line_and_exit_2(tmp_path, capsys, twice):
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS + [twice])
        row = make_row()
        writer.writerow([row[c] for c in COLUMNS] + [row[twice]])
    one_line_exit_2(["report", str(path), "--out", str(tmp_path / "report")], capsys, f"names {twice} twice")
    one_line_exit_2(["compare", str(path), str(path)], capsys, f"names {twice} twice")


def test_the_writer_leaves_an_infinity_empty_as_it_does_nan(tmp_path):
    path = tmp_path / "results.csv"
    append_row(path, make_row(train_samples_per_s=float("inf"), latency_p50_ms=float("-inf")))
    row = read_rows(path)[0]
    assert row["train_samples_per_s"] == "" and row["latency_p50_ms"] == ""


@pytest.mark.parametrize(("cell", "fragment"), [("", "empty infer_batch_size"), ("inf", "is not a finite number")])
def test_an_inference_point_without_a_finite_batch_size_is_refused_in_one_line(tmp_path, cell, fragment):
    results = make_row()
    point = {c: results.get(c, "") for c in INFERENCE_COLUMNS} | {
        "backend": "eager", "infer_batch_size": cell, "run_id": "r1", "status": "ok",
        "schema_version": INFERENCE_SCHEMA_VERSION}
    path = write_csv(tmp_path / "inference.csv", [point], INFERENCE_COLUMNS)
    with pytest.raises(ResultsError, match=fragment):
        load_inference(path)
