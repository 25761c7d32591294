"""`dnnbench history`'s step rule on made-up rows (fixtures: the real-sweep bar is tests/report/test_history.py):
a level shift at one commit is a step there, repeats that scatter within their ranges are none, and rows from
another host are a series of their own."""

from pathlib import Path

import pytest

from bench.cli import main
from bench.core.inference_columns import INFERENCE_COLUMNS, INFERENCE_SCHEMA_VERSION
from tests.report.test_history import three_commits
from tests.results_fixtures import make_row, write_csv

COMMITS = ("aaaa001", "bbbb002", "cccc003")


def sweeps(tmp_path: Path, levels: list[float], hostname: str = "vm", commits: tuple[str, ...] = COMMITS,
           first_factors: tuple[float, ...] = (0.98, 1.0, 1.02)) -> list[Path]:
    """One folder per commit, each with three repeats of one config around that commit's throughput level (the
    first commit's repeats at `first_factors` of it); the commits' rows ran on days 1, 2, 3."""
    folders = []
    for day, (commit, level) in enumerate(zip(commits, levels), start=1):
        folder = tmp_path / f"{hostname}-{commit}"
        folder.mkdir()
        rows = [make_row(repeat=r, train_samples_per_s=level * factor, git_commit=commit, hostname=hostname,
                         started_at=f"2026-01-0{day}T0{r}:00:00")
                for r, factor in enumerate(first_factors if day == 1 else (0.98, 1.0, 1.02))]
        write_csv(folder / "results.csv", rows)
        folders.append(folder)
    return folders


def with_inference(folders: list[Path], levels: list[float]) -> None:
    """An inference.csv beside each sweep: one ONNX Runtime point per run at that commit's throughput level."""
    for folder, level in zip(folders, levels):
        points = []
        for repeat, factor in enumerate((0.98, 1.0, 1.02)):
            point = {column: "" for column in INFERENCE_COLUMNS}
            point.update(model="cnn", datamodule="mnist5k", device="cpu", num_devices=1, num_nodes=1,
                         precision="32-true", compile="off", batch_size=128, profile="quick", seed=repeat,
                         repeat=repeat, run_id=f"cnn-r{repeat}", backend="onnxruntime", infer_batch_size=4,
                         status="ok", schema_version=INFERENCE_SCHEMA_VERSION, metric_name="acc",
                         metric_direction="max", infer_samples_per_s=level * factor)
            points.append(point)
        write_csv(folder / "inference.csv", points, INFERENCE_COLUMNS)


def history(capsys, *args) -> tuple[int, str]:
    code = main(["history", *map(str, args), "--fail-on-regression"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_level_shift_is_a_step_at_its_commit_with_the_range_to_bisect(tmp_path, capsys):
    code, out = history(capsys, *sweeps(tmp_path, [1000.0, 700.0, 700.0]), "--out", tmp_path / "page")
    assert code == 1
    steps = [line for line in out.splitlines() if "train_samples_per_s" in line]
    assert len(steps) == 1 and "REGRESSION" in steps[0] and "-30.0" in steps[0]
    assert "git log aaaa001..bbbb002" in steps[0] and steps[0].endswith("0 of 9")  # no row beside other load
    page = (tmp_path / "page" / "index.html").read_text()
    assert "git log aaaa001..bbbb002" in page and list((tmp_path / "page").glob("*.png"))


def test_an_inference_backend_is_a_series_with_its_runs_commits(tmp_path, capsys):
    folders = sweeps(tmp_path, [1000.0, 1000.0, 1000.0])
    with_inference(folders, [5000.0, 5000.0, 3000.0])
    code, out = history(capsys, *folders, "--out", tmp_path / "page")
    steps = [line for line in out.splitlines() if "infer_samples_per_s" in line]
    assert code == 1 and len(steps) == 1
    assert "onnxruntime infer-bs4" in steps[0] and "git log bbbb002..cccc003" in steps[0]


def test_commits_are_ordered_by_their_rows_when_git_does_not_know_them(tmp_path, capsys):
    folders = sweeps(tmp_path, [700.0, 1000.0, 1000.0])
    code, out = history(capsys, folders[2], folders[0], folders[1], "--repo", tmp_path, "--out", tmp_path / "page")
    assert code == 0  # faster from the second commit on: an improvement, not a regression
    assert "improved" in out and "git log aaaa001..bbbb002" in out


def test_commits_are_ordered_by_git_where_it_knows_them(tmp_path, capsys):
    first, middle, last = three_commits(tmp_path / "repo")
    # the newest commit's rows ran first: by their own times the step would be an improvement at `first`
    folders = sweeps(tmp_path, [700.0, 700.0, 1000.0], commits=(last, middle, first))
    code, out = history(capsys, *folders, "--repo", tmp_path / "repo", "--out", tmp_path / "page")
    assert code == 1 and "REGRESSION" in out and f"git log {first}..{middle}" in out


def test_a_commit_cell_is_never_an_option_to_git(tmp_path, capsys, monkeypatch):
    """A results file may come from anyone: a `git_commit` of `--output=FILE` made `git log` overwrite FILE."""
    three_commits(tmp_path / "repo")
    victim = Path("victim")  # relative (the folder is named after the cell): git -C would write repo/victim
    monkeypatch.chdir(tmp_path)
    victim.write_text("precious")
    folders = sweeps(tmp_path, [1000.0, 1000.0, 1000.0], commits=(f"--output={victim}", "bbbb002", "cccc003"))
    code, _ = history(capsys, *folders, "--repo", tmp_path / "repo", "--out", tmp_path / "page")
    assert code == 0 and victim.read_text() == "precious" and not (tmp_path / "repo" / "victim").exists()


def test_scatter_within_the_repeats_is_no_step(tmp_path, capsys):
    code, out = history(capsys, *sweeps(tmp_path, [1000.0, 1010.0, 995.0]), "--out", tmp_path / "page")
    assert code == 0
    assert "0 step(s) beyond the noise" in out


def test_a_shift_smaller_than_the_processes_of_one_commit_disagreed_by_is_no_step(tmp_path, capsys):
    """As between two sweeps of one build (tests/report/test_history.py): the first commit's processes spread 14 %,
    the next commits' sit 5.4 % higher, beyond the threshold and every first-commit row: within what one build's
    processes disagreed by. The same commit before a 30 % drop: a step."""
    wide = (0.87, 1.0, 1.01)
    (tmp_path / "small").mkdir(), (tmp_path / "large").mkdir()
    code, out = history(capsys, *sweeps(tmp_path / "small", [1000.0, 1054.0, 1054.0], first_factors=wide))
    assert code == 0 and "0 step(s) beyond the noise" in out, out
    code, out = history(capsys, *sweeps(tmp_path / "large", [1000.0, 700.0, 700.0], first_factors=wide))
    steps = [line for line in out.splitlines() if "train_samples_per_s" in line]
    assert code == 1 and len(steps) == 1 and "REGRESSION" in steps[0] and "git log aaaa001..bbbb002" in steps[0]


def test_another_host_is_another_series(tmp_path, capsys):
    here = sweeps(tmp_path, [1000.0, 1000.0, 1000.0])
    there = sweeps(tmp_path, [700.0, 700.0, 700.0], hostname="other")  # a slower machine, not a slower commit
    code, out = history(capsys, here[0], here[1], there[2], "--out", tmp_path / "page")
    assert code == 0 and "0 step(s)" in out  # pooled, the third commit would be 30 % slower
    assert "kept apart" in out


def test_bad_threshold_is_one_line_and_exit_2(tmp_path, capsys):
    folders = sweeps(tmp_path, [1000.0, 1000.0, 1000.0])
    assert main(["history", str(folders[0]), "--threshold", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--threshold" in err


@pytest.mark.integration
def test_wandb_gets_one_history_run_with_each_series_and_the_steps(tmp_path, capsys):
    import json

    import wandb

    wandb.teardown()  # a W&B an earlier test set up in this process (another mode) would be reused
    code, out = history(capsys, *sweeps(tmp_path, [1000.0, 700.0, 700.0]), "--out", tmp_path / "page",
                        "--wandb", "offline")
    (run_dir,) = (tmp_path / "page" / "wandb").glob("offline-run-*")
    tables = run_dir / "files" / "media" / "table"
    (throughput,) = tables.rglob("train_samples_per_s_table_*.table.json")
    table = json.loads(throughput.read_text())
    medians = [dict(zip(table["columns"], row))["median"] for row in table["data"]]
    assert medians == [1000.0, 700.0, 700.0] and list(tables.glob("steps_*.table.json"))
