"""bench/results/io.py: the typed row is flattened only here (a key that is not a column is never dropped silently:
an error in tests), and the one rule for a results file's last row (issue 23): `--resume` cuts only a row that is
provably a crash's partial write; `report`, `compare` and resume refuse anything else, and never touch the file."""

import codecs
import json
from dataclasses import FrozenInstanceError, dataclass, replace

import pandas as pd
import pytest

from bench.cli import main
from bench.core import config as cfg
from bench.core.columns import COLUMNS, SCHEMA_VERSION, Status
from bench.core.config import RunConfig
from bench.core.row import Cells, Columns, RunRow
from bench.launch.sweep import SweepError, runs_to_do
from bench.report.page import write_report
from bench.results.io import (
    ResultsError,
    UnknownColumnError,
    append_inference_rows,
    append_row,
    as_cells,
    flatten,
    load_inference,
    load_results,
    read_rows,
)
from bench.results.records import repair_partial_last_line
from tests.results_fixtures import INFERENCE_CURVE, inference_row, make_row, sweep_folder_with_curve, write_csv

CONFIG = RunConfig(model="mlp", datamodule="mnist5k", batch_size=32)


@dataclass(frozen=True)
class Speed(Columns):
    train_samples_per_s: float


@dataclass(frozen=True)
class Misspelt(Columns):
    train_sample_per_s: float


def test_the_typed_row_flattens_config_outcome_and_pieces_in_order():
    row = RunRow(CONFIG, started_at="2026-01-01T00:00:00")
    row = row.add(Speed(10.0), Cells({"wall_s": 3.0}), Speed(12.0)).end(Status.DIVERGED, "loss became nan")
    cells = flatten(row)
    assert cells["train_samples_per_s"] == 12.0 and cells["wall_s"] == 3.0  # the later piece wins
    assert (cells["status"], cells["message"], cells["schema_version"]) == ("diverged", "loss became nan",
                                                                            SCHEMA_VERSION)
    assert cells["reproduce"] == CONFIG.reproduce() and cells["batch_size"] == 32


def test_the_row_crosses_the_process_boundary_typed_and_is_flattened_only_by_the_writer(tmp_path):
    """The child's JSON file (to_json) gives the launcher the same typed row back: config, status, message, cells and
    the inference rows; adding to it builds a new row; append_row flattens it into the same cells."""
    inference_row = {"run_id": CONFIG.run_id, "backend": "eager", "infer_batch_size": 1}
    row = RunRow(CONFIG, started_at="2026-01-01T00:00:00").add(Speed(10.0), Cells({"wall_s": 3.0}))
    row = replace(row.end(Status.OOM, "out of memory").noted("", "a note"), inference=(inference_row,))
    back = RunRow.from_json(json.loads(json.dumps(row.to_json())))
    assert isinstance(back.config, RunConfig) and back.config == CONFIG and back.status is Status.OOM
    assert (back.message, back.inference, back.get("train_samples_per_s")) == ("out of memory; a note",
                                                                              (inference_row,), 10.0)
    more = back.add(Cells({"devices_used": "cpu:0"}))
    assert more is not back and back.get("devices_used") is None and more.get("devices_used") == "cpu:0"
    with pytest.raises(FrozenInstanceError):
        back.message = "changed"  # type: ignore[misc]
    written = append_row(tmp_path / "results.csv", row)
    assert written == as_cells(flatten(row)) and read_rows(tmp_path / "results.csv") == [written]
    assert "inference" not in written and written["status"] == "oom"


def test_a_misspelt_column_is_an_error_in_tests(tmp_path):
    row = RunRow(CONFIG).add(Misspelt(10.0))
    with pytest.raises(UnknownColumnError, match="train_sample_per_s"):
        flatten(row)
    with pytest.raises(UnknownColumnError, match="bogus"):
        append_row(tmp_path / "results.csv", flatten(RunRow(CONFIG)) | {"bogus": 1})


def test_outside_tests_the_row_is_kept_and_the_unknown_column_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DNNBENCH_STRICT_COLUMNS", "0")
    row = RunRow(CONFIG, message="a note").add(Misspelt(10.0))
    cells = flatten(row)
    assert "train_sample_per_s" not in cells and cells["message"] == "a note; unknown columns train_sample_per_s"
    append_row(tmp_path / "results.csv", cells)
    (written,) = read_rows(tmp_path / "results.csv")
    assert written["status"] == "ok" and "train_sample_per_s" in written["message"]
    assert "train_sample_per_s" in capsys.readouterr().err


REPRODUCE = "dnnbench run --models cnn --data-arg 'shape=(1, 28, 28)' --model-arg 'name=it'\"'\"'s'"


def sweep_file(tmp_path, rows=3):
    """A results.csv as a sweep writes it (the writer under test), `rows` rows long."""
    path = tmp_path / "results.csv"
    for repeat in range(rows):
        append_row(path, make_row(repeat=repeat, reproduce=REPRODUCE, message="two\nlines, quoted"))
    return path


def readers_refuse(path, tmp_path, capsys, fragment):
    before = path.read_bytes()
    assert main(["report", str(path), "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and fragment in err, err
    with pytest.raises(ResultsError, match=fragment):
        load_results(path)
    assert path.read_bytes() == before


def resume_refuses(path, fragment):
    before = path.read_bytes()
    with pytest.raises(SweepError, match=fragment):
        runs_to_do([], path, resume=True)
    assert path.read_bytes() == before


def test_a_whole_last_row_without_its_line_break_is_kept_and_the_next_row_starts_on_its_own_line(tmp_path):
    path = sweep_file(tmp_path)
    path.write_bytes(path.read_bytes().rstrip(b"\r\n"))  # as an editor or a copy tool may leave it
    assert len(load_results(path)) == 3
    todo, done = runs_to_do([], path, resume=True)
    assert len(done) == 3
    append_row(path, make_row(repeat=3, reproduce=REPRODUCE))
    assert [row["repeat"] for row in read_rows(path)] == ["0", "1", "2", "3"]


def test_a_last_row_with_an_added_field_is_refused_not_cut(tmp_path, capsys):
    path = sweep_file(tmp_path)
    path.write_bytes(path.read_bytes().rstrip(b"\r\n") + b",extra\r\n")
    resume_refuses(path, f"{len(COLUMNS) + 1} fields where the header has {len(COLUMNS)}")
    readers_refuse(path, tmp_path, capsys, "fields where the header has")


@pytest.mark.parametrize("keep", [1, 20, 60])
def test_a_cut_inside_the_last_cell_is_refused_by_readers_and_cut_by_resume(tmp_path, capsys, keep):
    path = sweep_file(tmp_path)
    data = path.read_bytes()
    last_start = data.rindex(b"\r\n", 0, len(data) - 2) + 2
    intact = data[:last_start]
    cut = data[:-2].rindex(b',"dnnbench') + keep  # every field present, `reproduce` cut short
    path.write_bytes(data[:cut])
    readers_refuse(path, tmp_path, capsys, "partial row")
    assert repair_partial_last_line(path) and path.read_bytes() == intact


def test_a_row_an_older_writer_left_without_line_break_is_refused_as_it_cannot_be_shown_whole(tmp_path, capsys):
    path = sweep_file(tmp_path, rows=1)
    quoted = '"' + REPRODUCE.replace('"', '""') + '"'
    old_style = path.read_bytes().decode().replace(quoted, "dnnbench run --models cnn --seed 1")
    path.write_text(old_style.rstrip("\r\n"), newline="")
    resume_refuses(path, "add a line break")
    readers_refuse(path, tmp_path, capsys, "add a line break")


def test_a_byte_order_mark_is_read_past_and_an_added_column_is_named(tmp_path):
    path = sweep_file(tmp_path, rows=2)
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    assert len(runs_to_do([], path, resume=True)[1]) == 2 and len(load_results(path)) == 2
    header, *rows = path.read_bytes()[3:].decode().split("\r\n")[:-1]
    path.write_text("".join(line + "\r\n" for line in [header + ",mine", *(row + ",x" for row in rows)]), newline="")
    with pytest.raises(SweepError, match=r"other columns: columns it does not write \(mine\)") as caught:
        runs_to_do([], path, resume=True)
    assert "schema_version 3; this dnnbench writes 3" not in str(caught.value)


def test_inference_csv_round_trips_and_a_rerun_runs_rows_win(tmp_path):
    folder = sweep_folder_with_curve(tmp_path / "s", INFERENCE_CURVE)
    rerun = inference_row("eager", 1, infer_samples_per_s=7.0)  # as --resume re-ran it
    append_inference_rows(folder / "inference.csv", [rerun])
    frame = load_inference(folder / "inference.csv")
    assert len(frame) == 6 and frame.loc[frame["backend"].eq("eager") & frame["infer_batch_size"].eq(1),
                                         "infer_samples_per_s"].tolist() == [7.0]
    assert frame["config_label"].iloc[0] == "mnist5k cpu 32-true bs128 quick"


def test_schema_2_files_still_read_and_v3_secondary_metrics_are_gated(tmp_path, capsys):
    old = [c for c in COLUMNS if c not in ("model_args", "data_args", "timed_steps", "train_samples_per_s_spread")]
    v2 = make_row(other_metrics="psnr=20.5 ssim=0.9", schema_version=2)
    frame = load_results(write_csv(tmp_path / "v2.csv", [{k: v2[k] for k in old}], columns=old))
    assert frame.loc[0, "other_metrics"] == {"psnr": {"value": 20.5, "better": None},
                                             "ssim": {"value": 0.9, "better": None}}
    assert frame.loc[0, "model_args"] == "{}"
    write_report([tmp_path / "v2.csv"], tmp_path / "report")
    assert "psnr=20.5" in (tmp_path / "report" / "summary.md").read_text()
    metric = '{{"psnr": {{"better": "max", "value": {}}}}}'
    base = write_csv(tmp_path / "base.csv", [make_row(other_metrics=metric.format(20.0))])
    new = write_csv(tmp_path / "new.csv", [make_row(other_metrics=metric.format(10.0))])
    assert main(["compare", str(base), str(new)]) == 1
    assert "other (psnr)" in capsys.readouterr().out


def test_a_results_file_from_before_the_size_axis_reads_as_classic_fixed(tmp_path):
    rows = pd.DataFrame([make_row(), make_row(batch_size=256)]).drop(columns=["size", "batch_size_mode"])
    rows.to_csv(tmp_path / "old.csv", index=False)
    frame = load_results(tmp_path / "old.csv")
    assert set(frame["size"]) == {"classic"} and set(frame["batch_size_mode"]) == {"fixed"}
    # The same config as a row written today at the classic size with a fixed batch.
    assert frame["config_id"][0] == cfg.identity(make_row() | {"size": "classic", "batch_size_mode": "fixed"})
    assert "classic" not in frame["config_label"][0]  # labels name the size only when it is not classic
