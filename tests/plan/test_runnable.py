"""bench/plan/runnable.py: a sweep of which nothing can run here is refused before it starts (exit 2, one line with
the fix, no folder, no rows, no report); a sweep of which some configs can run skips the others with one line each."""

import pytest

import datamodules
from bench.cli import build_parser, main
from bench.plan import runnable
from bench.plan.planner import plan
from tests.helpers import FAKE, one_line_error

NO_GPU = [
    (["--devices", "cuda"], "no CUDA GPU on this machine: use --devices cpu"),
    (["--devices", "cuda:2"], "no CUDA GPU on this machine"),
    (["--precisions", "16-mixed"], "use bf16-mixed"),
    (["--models", "mlp", "--data", "cifar10", "--data-arg", "data_dir=EMPTY"], "--data-arg download=true fetches"),
    (["--models", "mlp", "--data", "mnist", "--data-arg", "data_dir=EMPTY"], "mnist data not in"),
    (["--devices", "cuda", "--precisions", "32-true,16-mixed"], "no CUDA GPU"),
]


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(runnable, "gpus_here", lambda: 0)


@pytest.mark.parametrize("args, fragment", NO_GPU)
def test_a_sweep_that_cannot_run_here_exits_2_in_one_line_before_anything(tmp_path, capsys, no_gpu, args, fragment):
    out, empty = tmp_path / "out", tmp_path / "empty"
    empty.mkdir()
    args = [f"data_dir={empty}" if arg == "data_dir=EMPTY" else arg for arg in args]
    base = ["run", "--models", FAKE, "--profile", "smoke", "--wandb", "offline", "--no-progress", "--out", str(out)]
    assert main(base + args) == 2
    captured = capsys.readouterr()
    one_line_error(captured.err, fragment)
    assert "nothing in this sweep can run here" in captured.err
    assert captured.out == "" and not out.exists()  # no folder: no results.csv, no report, no W&B run


def planned(tmp_path, *args):
    return plan(build_parser().parse_args(["run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled",
                                           "--out", str(tmp_path / "out"), *args]))


def test_configs_that_cannot_run_are_skipped_with_one_line_each_when_others_can(tmp_path, no_gpu):
    result = planned(tmp_path, "--devices", "cpu,cuda", "--precisions", "32-true,16-mixed")
    assert [(c.device, c.precision) for c in result.configs] == [("cpu", "32-true")]
    lines = [skipped.line() for skipped in result.skipped]
    assert len(lines) == 3 and all("\n" not in line and line.startswith("dnnbench: skipped ") for line in lines)
    assert {(s.config.device, s.config.precision) for s in result.skipped} == {
        ("cpu", "16-mixed"), ("cuda", "32-true"), ("cuda", "16-mixed")}
    assert "use bf16-mixed" in lines[0] and "no CUDA GPU" in lines[1]


def test_more_gpus_than_here_names_how_many_there_are(tmp_path, monkeypatch):
    monkeypatch.setattr(runnable, "gpus_here", lambda: 1)
    result = planned(tmp_path, "--devices", "cuda,cuda:2")
    assert [c.num_devices for c in result.configs] == [1]
    assert result.skipped[0].reason == "2 GPUs asked, 1 here: use --devices cuda:1 or fewer"


def test_a_ray_cluster_s_gpus_are_not_judged_from_this_machine(tmp_path, no_gpu):
    pytest.importorskip("ray")
    result = planned(tmp_path, "--devices", "cuda", "--executor", "ray")
    assert len(result.configs) == 1 and not result.skipped


def test_image_files_are_found_unpacked_or_gzipped(tmp_path):
    mnist = datamodules.get("mnist")(data_dir=str(tmp_path))
    assert "4 of 4 files missing" in mnist.missing_data()
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in mnist.expected_files()[:3]:
        (raw / name).write_bytes(b"")
    (raw / f"{mnist.expected_files()[3]}.gz").write_bytes(b"")
    assert mnist.missing_data() is None
    assert datamodules.get("mnist")(data_dir=str(tmp_path / "none"), download=True).missing_data() is None
    cifar = datamodules.get("cifar10")(data_dir=str(tmp_path))
    assert "7 of 7 files missing, e.g. data_batch_1" in cifar.missing_data()


@pytest.mark.integration
def test_a_sweep_with_some_configs_that_cannot_run_runs_the_others_and_writes_no_row_for_the_rest(tmp_path, capsys,
                                                                                                 no_gpu):
    from bench.results.io import read_rows
    from tests.helpers import sweep_args

    assert main(sweep_args(tmp_path / "out", "--devices", "cpu,cuda", "--precisions", "32-true,16-mixed")) == 0
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if line.startswith("dnnbench: skipped ")]
    assert len(skipped) == 3 and all(len(line) <= 120 for line in err.splitlines())
    assert [(r["device"], r["precision"], r["status"]) for r in read_rows(tmp_path / "out" / "results.csv")] == [
        ("cpu", "32-true", "ok")]
