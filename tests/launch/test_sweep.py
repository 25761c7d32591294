"""bench/launch/sweep.py: the sweep's queue, resume, its folder, its exit codes and console lines, and no child
outliving a sweep that is stopped or killed."""

import csv
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.core.columns import COLUMNS
from bench.core.config import RunConfig
from bench.launch.sweep import RunQueue, hold_sweep_folder
from bench.results.io import read_rows
from tests.helpers import FAKE, ROOT, one_line_error, sweep_args


@pytest.mark.integration
def test_a_full_disk_at_the_first_run_is_one_line_and_resume_completes(tmp_path):
    """The folder check passes (its probe file is empty), then the first run's own files no longer fit."""
    out = tmp_path / "sweep"
    command = sweep_command(out)

    def full_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))

    full = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=full_disk)
    assert full.returncode == 2, full.stderr[-2000:]
    one_line_error(full.stderr, "File too large")
    resumed = subprocess.run(command + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [r["status"] for r in read_rows(out / "results.csv")] == ["ok"]


def test_a_second_sweep_on_a_held_folder_exits_2_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "sweep"
    out.mkdir()
    with hold_sweep_folder(out):
        assert main(sweep_args(out)) == 2
        one_line_error(capsys.readouterr().err, f"pid {os.getpid()}")
    assert not (out / "results.csv").exists()
    with hold_sweep_folder(out):  # released when the first sweep ends
        pass


def test_resume_on_a_binary_or_directory_results_file_exits_2_and_touches_nothing(tmp_path, capsys):
    out = tmp_path / "sweep"
    out.mkdir()
    garbage = bytes(range(256)) * 4 + b"\xff\xfe no newline at the end"
    (out / "results.csv").write_bytes(garbage)
    assert main(sweep_args(out, "--resume")) == 2
    one_line_error(capsys.readouterr().err, "results.csv")
    assert (out / "results.csv").read_bytes() == garbage
    (out / "results.csv").unlink()
    (out / "results.csv").mkdir()
    assert main(sweep_args(out, "--resume")) == 2
    one_line_error(capsys.readouterr().err, "not a file")


@pytest.mark.integration
def test_a_sweep_with_an_errored_run_exits_1_after_writing_the_row_and_report(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(sweep_args(out, "--model-arg", "mode=crash")) == 1
    assert [r["status"] for r in read_rows(out / "results.csv")] == ["error"]
    assert (out / "index.html").exists()
    assert "error or timeout" in capsys.readouterr().err


def test_a_precision_waits_for_its_32_true_run_so_drift_is_filled():
    base = RunConfig(model="mlp", datamodule="mnist5k")
    other = RunConfig(model="mlp", datamodule="mnist5k", precision="bf16-mixed")
    unrelated = RunConfig(model="cnn", datamodule="mnist5k", precision="bf16-mixed")
    queue = RunQueue([base, other, unrelated])
    assert queue.next_ready() == base
    queue.start(base)
    assert queue.next_ready() == unrelated  # `other` waits while its baseline runs
    queue.start(unrelated)
    assert queue.next_ready() is None
    queue.finish(base)
    assert queue.next_ready() == other


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def start_sleeping_sweep(out: Path, env: dict):
    """A sweep whose run sleeps in training; returns it and its run's pid once training started."""
    args = [sys.executable, "-m", "bench", "run", "--models", FAKE, "--model-arg", "mode=sleep", "--profile",
            "smoke", "--wandb", "disabled", "--no-progress", "--out", str(out)]
    sweep = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 240
    while time.time() < deadline:
        found = list((out / "runs").glob("*.progress")) if (out / "runs").exists() else []
        reported = json.loads(found[0].read_text()) if found else {}
        if reported.get("stage") == "fit":
            return sweep, reported["pid"]
        time.sleep(0.2)
    sweep.kill()
    raise AssertionError("the run never started training")


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
@pytest.mark.parametrize("signum, warm", [(signal.SIGKILL, True), (signal.SIGKILL, False), (signal.SIGTERM, True)])
def test_no_child_outlives_a_killed_sweep(tmp_path, signum, warm):
    sweep, child = start_sleeping_sweep(tmp_path / "out", os.environ | {"DNNBENCH_WARM": "1" if warm else "0"})
    parent = int(Path(f"/proc/{child}/stat").read_text().split(")")[-1].split()[2])  # the server, or the sweep
    os.kill(sweep.pid, signum)
    sweep.communicate(timeout=30)
    killed_at = time.time()
    while time.time() - killed_at < 5 and (alive(child) or alive(parent)):
        time.sleep(0.1)
    assert not alive(child) and not alive(parent)
    if signum == signal.SIGTERM:
        assert sweep.returncode == 128 + signal.SIGTERM


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
def test_ctrl_c_ends_the_sweep_with_one_line_and_exit_130(tmp_path):
    sweep, child = start_sleeping_sweep(tmp_path / "out", dict(os.environ))
    sweep.send_signal(signal.SIGINT)
    _, err = sweep.communicate(timeout=30)
    assert sweep.returncode == 130
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("dnnbench: stopped by SIGINT")
    deadline = time.time() + 5
    while time.time() < deadline and alive(child):
        time.sleep(0.1)
    assert not alive(child)


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_sweep_stopped_while_starting_takes_its_warm_server_along(tmp_path, signum):
    """SIGTERM or SIGKILL while the sweep still imports and plans: one line and exit 143 for SIGTERM, and the warm
    server (started first, itself still importing) ends with it rather than seconds later."""
    import psutil

    args = [sys.executable, "-m", "bench", "run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled",
            "--no-progress", "--out", str(tmp_path / "out")]
    sweep = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (children := psutil.Process(sweep.pid).children()) and time.time() < deadline:
        time.sleep(0.02)
    assert children, "the sweep started no warm server"
    time.sleep(0.3)  # the server is still importing
    sweep.send_signal(signum)
    _, err = sweep.communicate(timeout=30)
    killed_at = time.time()
    while time.time() - killed_at < 2 and alive(children[0].pid):
        time.sleep(0.05)
    assert not alive(children[0].pid)
    if signum == signal.SIGTERM:
        assert sweep.returncode == 143 and err.strip().splitlines() == ["dnnbench: stopped by SIGTERM"], err


@pytest.mark.integration
def test_a_ctrl_c_while_exiting_is_quiet(tmp_path):
    """A second Ctrl-C that lands in the exit handlers (stopping the warm server, W&B's flush) ends the process
    at once, without "Exception ignored in atexit callback"."""
    code = ("import atexit, os, signal, sys, time; from bench.cli import main; "
            "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(5))); "
            f"sys.argv = ['dnnbench', 'report', {str(tmp_path / 'missing.csv')!r}]; sys.exit(main())")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 130 and "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, \
        done.stderr


def sweep_command(out, *extra):
    """The sweep of sweep_args as its own process (`python -m bench`)."""
    return [sys.executable, "-m", "bench", *sweep_args(out, *extra)]


@pytest.mark.integration
def test_killed_sweep_resumes_without_lost_or_duplicated_rows(tmp_path):
    out = tmp_path / "sweep"
    args = sweep_command(out, "--repeats", "4")
    sweep = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(read_rows(out / "results.csv")) < 2:
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGKILL)  # mid-sweep, no chance to clean up
    sweep.wait()
    kept = read_rows(out / "results.csv")
    assert 2 <= len(kept) < 4
    refused = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    resumed = subprocess.run(args + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rows = read_rows(out / "results.csv")
    assert sorted(int(r["repeat"]) for r in rows) == [0, 1, 2, 3]
    assert rows[: len(kept)] == kept  # finished rows untouched
    with open(out / "results.csv", newline="") as f:
        assert next(csv.reader(f)) == COLUMNS


def test_a_sweep_refuses_to_append_to_a_csv_with_other_columns(tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    old_columns = [c for c in COLUMNS if c != "other_metrics"]  # a schema-version-1 file
    (out / "results.csv").write_text(",".join(old_columns) + "\n" + ",".join("1" for _ in old_columns) + "\n")
    code = main(["run", "--models", FAKE, "--data", "synthetic", "--profile", "smoke", "--out", str(out),
                 "--resume", "--wandb", "disabled", "--no-progress"])
    assert code == 2 and "other columns" in capsys.readouterr().err
    assert (out / "results.csv").read_text().count("\n") == 2  # untouched


def test_unwritable_output_folder_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "--models", FAKE, "--out", str(blocker / "sub"), "--wandb", "disabled"]) == 2
    one_line_error(capsys.readouterr().err, "cannot be created (Not a directory)")


@pytest.mark.integration
@pytest.mark.slow
def test_two_process_ddp_on_cpu_reports_throughput(tmp_path):
    out = tmp_path / "ddp"
    result = subprocess.run(sweep_command(out, "--devices", "cpu,cpu:2"), cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    rows = read_rows(out / "results.csv")
    assert [(r["num_devices"], r["strategy"], r["status"]) for r in rows] == [("1", "auto", "ok"),
                                                                               ("2", "ddp", "ok")]
    assert all(float(r["train_samples_per_s"]) > 0 for r in rows)


@pytest.mark.integration
def test_resume_reruns_a_config_whose_model_argument_changed(tmp_path):
    out = tmp_path / "sweep"
    common = ["run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled", "--no-progress",
              "--out", str(out), "--resume"]
    assert main(common + ["--model-arg", "mode=ok"]) == 0
    assert main(common + ["--model-arg", "mode=ok"]) == 0  # same config: skipped
    assert len(read_rows(out / "results.csv")) == 1
    assert main(common + ["--model-arg", "mode=nan"]) == 0  # another argument: another config, so it runs
    rows = read_rows(out / "results.csv")
    assert [(r["model_args"], r["status"]) for r in rows] == [('{"mode": "ok"}', "ok"), ('{"mode": "nan"}', "diverged")]


def test_the_repeats_advice_comes_only_when_single_runs_cannot_tell_two_variants_apart():
    """Unsteady windows alone say nothing (nearly every run on a 2-core VM has them); two configs one setting apart
    whose speeds are closer than their windows' spread do: which is faster could come out either way."""
    from bench.launch.repeats import repeats_advice
    from tests.results_fixtures import make_row

    steady_apart = [make_row(train_samples_per_s=1000.0, train_samples_per_s_spread=0.3),
                    make_row(precision="bf16-mixed", train_samples_per_s=1500.0, train_samples_per_s_spread=0.3)]
    assert repeats_advice(steady_apart, 1) == ""  # 50 % apart, windows 30 %: bf16-mixed is faster either way
    close = [make_row(train_samples_per_s=1000.0, train_samples_per_s_spread=0.23),
             make_row(precision="bf16-mixed", train_samples_per_s=1040.0, train_samples_per_s_spread=0.05)]
    advice = repeats_advice(close, 1)
    assert " ".join(advice.split()).startswith("dnnbench: note: one run per config cannot tell cnn 32-true from "
                                               "bf16-mixed (train speeds 4 % apart, their speed windows 23 %)")
    assert "--repeats 3" in advice
    assert all(len(line) <= 120 for line in advice.splitlines())
    assert repeats_advice(close, 3) == ""  # repeats measure the range
    quiet = [dict(row, train_samples_per_s_spread=0.05) for row in close]
    assert repeats_advice(quiet, 1) == ""  # steady windows: 4 % is a difference
    two_apart = [close[0], dict(close[1], batch_size=64)]
    assert repeats_advice(two_apart, 1) == ""  # two settings apart: no one conclusion to change
    many = close + [make_row(model="mlp", train_samples_per_s=t, train_samples_per_s_spread=0.2, precision=p)
                    for t, p in ((500.0, "32-true"), (520.0, "bf16-mixed"))]
    assert "2 pairs one setting apart, e.g. " in repeats_advice(many, 1)

