"""Nothing lost, whatever happens: W&B down, a crash mid-write, a full disk, two sweeps on one folder, bad input,
holes in the compare gate and the exit codes of a sweep with failed runs (issue 13)."""

import http.server
import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import FAKE
from results_fixtures import make_row, write_csv

from bench.cli import main
from bench.core.columns import COLUMNS, Status
from bench.core.config import RunConfig
from bench.integrations import wandb_log
from bench.launch.child_process import run_child
from bench.launch.sweep import hold_sweep_folder
from bench.results.io import append_row, read_rows
from bench.results.records import repair_partial_last_line

ROOT = Path(__file__).resolve().parent.parent

CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens there, a connection is refused at once


def sweep_args(out, *extra):
    return ["run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled", "--no-progress", "--out", str(out),
            *extra]


def one_line_error(err: str, fragment: str) -> None:
    """Bad input and faults are one line on stderr naming the reason, never a traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dnnbench: error:"), err
    assert fragment in lines[0], lines[0]


# ----------------------------------------------------------------------------------------- W&B unreachable
def clean_wandb_env(tmp_path, **extra):
    """An environment with no W&B credentials of this machine's own (no key, no netrc, no settings file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(NETRC=str(tmp_path / "no-netrc"), WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"), **extra)
    return env


def test_online_wandb_without_a_key_is_reported_not_tried(tmp_path, monkeypatch):
    for key, value in clean_wandb_env(tmp_path, WANDB_BASE_URL=CLOSED_PORT).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert "no W&B API key" in wandb_log.online_problem()


def test_online_wandb_with_a_closed_port_or_a_rejected_key_is_reported(tmp_path, monkeypatch):
    for key, value in clean_wandb_env(tmp_path, WANDB_API_KEY="k" * 40, WANDB_BASE_URL=CLOSED_PORT).items():
        monkeypatch.setenv(key, value)
    assert "unreachable" in wandb_log.online_problem()

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # what a W&B server answers a key it does not know
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.server_port}")
        assert "rejected the API key" in wandb_log.online_problem()
    finally:
        server.shutdown()


def test_unreachable_wandb_costs_no_row_and_falls_back_to_offline_once(tmp_path):
    """A set WANDB_API_KEY makes online the default: on a machine without network every row must still be ok."""
    out = tmp_path / "sweep"
    env = clean_wandb_env(tmp_path, WANDB_API_KEY="k" * 40, WANDB_BASE_URL=CLOSED_PORT, WANDB_SILENT="true")
    args = [a for a in sweep_args(out) if a not in ("--wandb", "disabled")]
    # Before the fix each wandb.init retried for 90 s and then failed fit: the guard is a hang limit, not a timing.
    result = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [r["status"] for r in read_rows(out / "results.csv")] == ["ok"]
    warnings = [line for line in result.stderr.splitlines() if "W&B" in line]
    assert len(warnings) == 1 and "offline" in warnings[0] and "unreachable" in warnings[0], result.stderr
    assert list((out / "wandb").glob("offline-run-*")), "the run is kept offline for `wandb sync`"


def test_a_wandb_that_goes_away_mid_sweep_turns_the_run_offline_not_into_an_error(tmp_path, monkeypatch):
    """The sweep's check passed but W&B is gone when the run starts: that run logs offline and its row is ok."""
    for key, value in clean_wandb_env(tmp_path, WANDB_API_KEY="k" * 40, WANDB_BASE_URL=CLOSED_PORT,
                                      WANDB_INIT_TIMEOUT="3", WANDB_SILENT="true").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    config = RunConfig(model=FAKE, datamodule="synthetic", batch_size=16, profile="smoke", time_limit_s=120,
                       wandb="online")
    row = run_child(config, tmp_path)
    assert row["status"] == "ok", row["message"]
    log = (tmp_path / "runs" / f"{config.run_id}.log").read_text()
    assert "W&B online logging failed for this run" in log
    assert list((tmp_path / "wandb").glob("offline-run-*"))


# ------------------------------------------------------------------------------------- a partial last line
def fake_row(repeat, **cells):
    config = RunConfig(model=FAKE, datamodule="synthetic", batch_size=16, profile="smoke", seed=repeat, repeat=repeat)
    return config.columns() | {"status": "ok", "schema_version": 3, "train_samples_per_s": 100.0,
                               "started_at": "fixture", "reproduce": "fixture"} | cells


def cut_file(tmp_path, where):
    """A results CSV of two rows whose second was cut by a crash at `where`; returns (path, the intact bytes)."""
    path = tmp_path / "sweep" / "results.csv"
    path.parent.mkdir()
    append_row(path, fake_row(0))
    intact = path.read_bytes()
    append_row(path, fake_row(1, message="first line of a reason\nsecond line"))
    last = path.read_bytes()[len(intact):].decode()
    cut = {"inside the config columns": last.index("synthetic"),
           "after the config columns": last.index(",ok,") + 4,
           "after a newline inside a quoted cell": last.index("\n") + 1}[where]
    path.write_bytes(intact + last[:cut].encode())
    return path, intact


CUTS = ["inside the config columns", "after the config columns", "after a newline inside a quoted cell"]


@pytest.mark.parametrize("where", CUTS)
def test_readers_reject_a_partial_row_with_a_one_line_reason(tmp_path, capsys, where):
    path, _ = cut_file(tmp_path, where)
    good = write_csv(tmp_path / "good.csv", [fake_row(0), fake_row(1)])
    assert main(["compare", str(good), str(path)]) == 2
    one_line_error(capsys.readouterr().err, "fields")
    assert main(["report", str(path), "--out", str(tmp_path / "report")]) == 2
    one_line_error(capsys.readouterr().err, "fields")


@pytest.mark.parametrize("where", CUTS)
def test_repair_keeps_the_finished_rows_and_drops_only_the_partial_one(tmp_path, where):
    path, intact = cut_file(tmp_path, where)
    assert repair_partial_last_line(path)
    assert path.read_bytes() == intact
    assert not repair_partial_last_line(path)  # nothing more to cut


def test_a_cut_header_is_repaired_to_an_empty_file(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(",".join(COLUMNS)[:100])
    assert repair_partial_last_line(path) and path.read_bytes() == b""


def test_resume_reruns_the_partial_row_once(tmp_path):
    path, intact = cut_file(tmp_path, "after the config columns")
    assert main(sweep_args(path.parent, "--repeats", "2", "--resume")) == 0
    rows = read_rows(path)
    assert [(r["repeat"], r["started_at"] == "fixture") for r in rows] == [("0", True), ("1", False)]
    assert path.read_bytes().startswith(intact)


# -------------------------------------------------------------------------------------------- full disk
@pytest.fixture
def small_files():
    """Writes past a size fail with EFBIG, as on a full disk (Python ignores SIGXFSZ, so they raise)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def limit(size):
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))

    yield limit
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_row_cut_by_a_full_disk_is_repaired_and_the_rows_before_it_kept(tmp_path, small_files):
    path = tmp_path / "results.csv"
    append_row(path, fake_row(0))
    intact = path.read_bytes()
    small_files(len(intact) + 100)  # room for a part of the next row only
    with pytest.raises(OSError, match="File too large"):
        append_row(path, fake_row(1))
    small_files(resource.RLIM_INFINITY)
    assert len(path.read_bytes()) > len(intact)
    assert repair_partial_last_line(path) and path.read_bytes() == intact


def test_a_full_disk_at_the_first_run_is_one_line_and_resume_completes(tmp_path):
    """The folder check passes (its probe file is empty), then the first run's own files no longer fit."""
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "bench", *sweep_args(out)]

    def full_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))

    full = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=full_disk)
    assert full.returncode == 2, full.stderr[-2000:]
    one_line_error(full.stderr, "File too large")
    resumed = subprocess.run(command + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [r["status"] for r in read_rows(out / "results.csv")] == ["ok"]


# ------------------------------------------------------------------------------------ two sweeps, one folder
def test_a_second_sweep_on_a_held_folder_exits_2_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "sweep"
    out.mkdir()
    with hold_sweep_folder(out):
        assert main(sweep_args(out)) == 2
        one_line_error(capsys.readouterr().err, f"pid {os.getpid()}")
    assert not (out / "results.csv").exists()
    with hold_sweep_folder(out):  # released when the first sweep ends
        pass


# ----------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("argv, fragment", [
    (["run", "--repeats", "abc"], "invalid int value: 'abc'"),
    (["compare", "base.csv"], "required: new"),
])
def test_argument_syntax_errors_are_one_line_too(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "usage" not in err


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


def test_report_to_an_unusable_folder_is_one_line(tmp_path, capsys):
    results = write_csv(tmp_path / "results.csv", [make_row()])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in (blocker, Path("/proc/dnnbench-report")):
        assert main(["report", str(results), "--out", str(out)]) == 2
        one_line_error(capsys.readouterr().err, str(out))


# -------------------------------------------------------------------------------------------- compare gate
@pytest.mark.parametrize("threshold", ["-5", "nan", "inf"])
def test_compare_refuses_a_threshold_that_disables_or_inverts_the_gate(tmp_path, capsys, threshold):
    rows = write_csv(tmp_path / "rows.csv", [make_row()])
    assert main(["compare", str(rows), str(rows), "--threshold", threshold]) == 2
    one_line_error(capsys.readouterr().err, "--threshold")


def test_compare_refuses_a_non_numeric_metric_cell_naming_where(tmp_path, capsys):
    base = write_csv(tmp_path / "base.csv", [make_row()])
    new = write_csv(tmp_path / "new.csv", [make_row(), make_row(precision="bf16-mixed", train_samples_per_s="fast")])
    assert main(["compare", str(base), str(new)]) == 2
    one_line_error(capsys.readouterr().err, "new.csv line 3: train_samples_per_s 'fast' is not a finite number")


def test_compare_refuses_an_unknown_status(tmp_path, capsys):
    base = write_csv(tmp_path / "base.csv", [make_row()])
    new = write_csv(tmp_path / "new.csv", [make_row(status="fine")])
    assert main(["compare", str(base), str(new)]) == 2
    one_line_error(capsys.readouterr().err, "unknown status 'fine'")


def test_a_base_of_failed_rows_is_compared_by_status(tmp_path, capsys):
    base = write_csv(tmp_path / "base.csv", [make_row(status="error"),
                                             make_row(precision="bf16-mixed", status="timeout")])
    new = write_csv(tmp_path / "new.csv", [make_row(), make_row(precision="bf16-mixed", status="error")])
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "no configs in common" not in out
    assert "improved" in out and "timeout" in out and "error" in out


# ------------------------------------------------------------------------------------------------ exit codes
def test_a_sweep_with_an_errored_run_exits_1_after_writing_the_row_and_report(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(sweep_args(out, "--model-arg", "mode=crash")) == 1
    assert [r["status"] for r in read_rows(out / "results.csv")] == ["error"]
    assert (out / "index.html").exists()
    assert "error or timeout" in capsys.readouterr().err


def test_measured_outcomes_are_not_failures():
    assert [s.value for s in Status if not s.measured] == ["timeout", "error"]
