"""--resume and inference.csv: a damaged file is repaired, never emptied, and a finished run whose points are not all
in it (a row cut by a crash or a full disk, backends or batch sizes added to the command since) is run again; its
new results row supersedes the old one for every reader."""

from bench.core.columns import Status
from bench.core.config import RunConfig
from bench.core.inference_columns import INFERENCE_COLUMNS, INFERENCE_SCHEMA_VERSION
from bench.core.row import RunRow
from bench.launch.sweep import runs_to_do
from bench.results.io import append_inference_rows, append_row, load_results, read_rows
from bench.results.records import repair_partial_last_line


def config(backends="eager,int8", sizes="1,4", repeat=0) -> RunConfig:
    return RunConfig(model="mlp", datamodule="mnist5k", profile="smoke", repeat=repeat, infer_backends=backends,
                     infer_batch_sizes=sizes)


def points(run: RunConfig, backends=("eager", "int8"), sizes=(1, 4)) -> list[dict]:
    return [run.columns() | {"run_id": run.run_id, "backend": b, "infer_batch_size": n, "status": "ok",
                             "infer_samples_per_s": 100.0 * n, "schema_version": INFERENCE_SCHEMA_VERSION}
            for b in backends for n in sizes]


def finished_sweep(tmp_path, runs: list[RunConfig], **kwargs):
    for run in runs:
        append_inference_rows(tmp_path / "inference.csv", points(run, **kwargs))
        append_row(tmp_path / "results.csv", RunRow(run, Status.OK))
    return tmp_path / "results.csv"


def test_a_finished_sweep_with_every_point_resumes_with_nothing_to_do(tmp_path):
    runs = [config(repeat=0), config(repeat=1)]
    todo, done = runs_to_do(runs, finished_sweep(tmp_path, runs), resume=True)
    assert todo == [] and len(done) == 2


def test_a_partial_last_inference_row_is_cut_and_its_run_rerun(tmp_path, capsys):
    runs = [config(repeat=0), config(repeat=1)]
    csv_path = finished_sweep(tmp_path, runs)
    inference = tmp_path / "inference.csv"
    inference.write_bytes(inference.read_bytes()[:-40])  # a crash or a full disk cut the last point short
    todo, _ = runs_to_do(runs, csv_path, resume=True)
    assert todo == [runs[1]]
    out = capsys.readouterr().out
    assert "re-running 1 finished run(s)" in out and "int8 bs4" in out
    assert read_rows(csv_path) and inference.read_bytes().endswith(b"\r\n")  # whole rows only, none lost but it


def test_backends_and_batch_sizes_added_since_are_measured_on_resume(tmp_path, capsys):
    csv_path = finished_sweep(tmp_path, [config("eager", "1")], backends=("eager",), sizes=(1,))
    assert runs_to_do([config("eager", "1")], csv_path, resume=True)[0] == []
    wider = config("eager,int8", "1,4")
    assert runs_to_do([wider], csv_path, resume=True)[0] == [wider]
    assert "int8 bs1" in capsys.readouterr().out


def test_a_failed_run_is_not_rerun_for_points_it_never_measured(tmp_path):
    run = config()
    append_row(tmp_path / "results.csv", RunRow(run, Status.ERROR, "boom"))
    assert runs_to_do([run], tmp_path / "results.csv", resume=True)[0] == []


def test_a_rerun_row_supersedes_the_old_one_for_every_reader(tmp_path):
    run = config()
    append_row(tmp_path / "results.csv", RunRow(run, Status.OK, "first"))
    append_row(tmp_path / "results.csv", RunRow(run, Status.OK, "again"))
    assert [row["message"] for row in read_rows(tmp_path / "results.csv")] == ["again"]
    assert list(load_results(tmp_path / "results.csv")["message"]) == ["again"]


def test_a_cut_header_is_finished_never_emptied(tmp_path):
    path = tmp_path / "inference.csv"
    header = ",".join(INFERENCE_COLUMNS)
    path.write_text(header[:57])
    assert repair_partial_last_line(path, INFERENCE_COLUMNS)
    assert path.read_bytes() == (header + "\r\n").encode()
    append_inference_rows(path, points(config(), ("eager",), (1,)))  # and the writer appends to it as to its own
    assert path.read_bytes().count(b"\r\n") == 2


def test_resume_refuses_an_inference_csv_written_with_other_columns(tmp_path):
    import pytest

    from bench.core.errors import SweepError

    run = config()
    csv_path = finished_sweep(tmp_path, [run])
    text = (tmp_path / "inference.csv").read_text().replace(",noise_warning", "", 1)
    (tmp_path / "inference.csv").write_text(text.split("\n")[0] + "\n")
    with pytest.raises(SweepError, match="--out a new folder"):
        runs_to_do([run], csv_path, resume=True)
