"""--resume and inference.csv: a damaged file is repaired, never emptied, and a finished run whose points are not all
in it (a row cut by a crash or a full disk, backends or batch sizes added to the command since) is run again; its
new results row supersedes the old one for every reader. A run that its own time limit cut (a `timeout` row, a curve
cut there) runs again only under a larger limit."""

import pytest

from bench.core.columns import Status
from bench.core.config import RunConfig
from bench.core.inference_columns import INFERENCE_COLUMNS, INFERENCE_SCHEMA_VERSION
from bench.core.row import RunRow
from bench.launch.child_process import run_child
from bench.launch.sweep import runs_to_do, write_inference_rows
from bench.results.io import append_inference_rows, append_row, load_results, read_rows
from bench.results.records import repair_partial_last_line


def config(backends="eager,int8", sizes="1,4", repeat=0, time_limit_s=300.0) -> RunConfig:
    return RunConfig(model="mlp", datamodule="mnist5k", profile="smoke", repeat=repeat, infer_backends=backends,
                     infer_batch_sizes=sizes, time_limit_s=time_limit_s)


def points(run: RunConfig, backends=("eager", "int8"), sizes=(1, 4), status=lambda backend: "ok") -> list[dict]:
    return [run.columns() | {"run_id": run.run_id, "backend": b, "infer_batch_size": n, "status": status(b),
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


# ------------------------------------------------------------------ runs that their own time limit cut
@pytest.mark.parametrize("now, rerun", [(300.0, False), (120.0, False), (600.0, True)])
def test_a_timeout_row_runs_again_only_under_a_larger_time_limit(tmp_path, capsys, now, rerun):
    append_row(tmp_path / "results.csv", RunRow(config(), Status.TIMEOUT, "killed after the 300 s time limit"))
    later = config(time_limit_s=now)
    assert runs_to_do([later], tmp_path / "results.csv", resume=True)[0] == ([later] if rerun else [])
    out = capsys.readouterr().out
    if rerun:
        assert "re-running 1 run(s) that their time limit cut, under the longer one given now" in out
        assert "(timeout at 300 s, now 600 s)" in out
    else:
        assert "not re-running 1 run(s) that their own time limit cut (a larger --time-limit runs them again)" in out
        assert "(timeout at 300 s)" in out


@pytest.mark.parametrize("now, rerun", [(300.0, False), (600.0, True)])
def test_a_curve_its_time_limit_cut_runs_again_only_under_a_larger_one(tmp_path, capsys, now, rerun):
    run = config()
    csv_path = finished_sweep(tmp_path, [run], status=lambda backend: "timeout" if backend == "int8" else "ok")
    later = config(time_limit_s=now)
    assert runs_to_do([later], csv_path, resume=True)[0] == ([later] if rerun else [])
    assert "(int8 bs1, int8 bs4 at 300 s" in capsys.readouterr().out


def test_a_cut_run_whose_flags_widened_since_runs_again_for_the_new_points(tmp_path):
    csv_path = finished_sweep(tmp_path, [config()], status=lambda backend: "timeout" if backend == "int8" else "ok")
    wider = config("eager,int8,export")
    assert runs_to_do([wider], csv_path, resume=True)[0] == [wider]


def test_a_cut_run_that_ran_again_under_a_larger_limit_and_finished_is_whole(tmp_path):
    run = config()
    finished_sweep(tmp_path, [run], status=lambda backend: "timeout" if backend == "int8" else "ok")
    longer = config(time_limit_s=600.0)
    csv_path = finished_sweep(tmp_path, [longer])  # its points (the last of each) and row supersede the cut ones
    assert runs_to_do([longer], csv_path, resume=True)[0] == []


@pytest.mark.integration
def test_a_run_killed_at_its_time_limit_during_its_curve_is_not_rerun_under_the_same_limit(tmp_path, capsys):
    """`--infer-backends eager,int8 --time-limit 15`, killed during int8: the row keeps eager's points, and its
    unmeasured ones are `timeout` points, so every --resume under the same limit does not run it (and cut it) again."""
    def hanging(time_limit_s):
        return RunConfig(model="tests.fake_models:FakeNet", datamodule="synthetic", batch_size=16, profile="smoke",
                         time_limit_s=time_limit_s, model_args={"mode": "hang_in_int8"}, infer_backends="eager,int8",
                         data_args={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 64})

    row = run_child(hanging(15), tmp_path)
    csv_path = tmp_path / "results.csv"
    append_row(csv_path, write_inference_rows(tmp_path / "inference.csv", row))  # as the sweep writes a row
    assert row.status == "ok" and "inference backends not finished: int8" in row.message, row.message
    assert runs_to_do([hanging(15)], csv_path, resume=True)[0] == []
    assert "not re-running 1 run(s) that their own time limit cut" in capsys.readouterr().out
    assert runs_to_do([hanging(60)], csv_path, resume=True)[0] == [hanging(60)]
