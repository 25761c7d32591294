"""bench/integrations/wandb_log.py: the offline run's summary holds the result row, the sweep's summary run the
table; an online W&B that is unreachable or goes away costs no row."""

import http.server
import json
import os
import struct
import subprocess
import sys
import threading
import time

import pytest
from wandb.proto import wandb_internal_pb2

from bench.core.config import RunConfig
from bench.integrations import wandb_log
from bench.launch.child_process import run_child
from bench.results.io import flatten, read_rows
from tests.helpers import FAKE, ROOT, sweep_args
from tests.results_fixtures import INFERENCE_CURVE, make_row, sweep_folder_with_curve, write_csv


def records(path):
    """Records of a W&B transaction log (.wandb): a 7-byte header, then LevelDB-log chunks in 32 KiB blocks."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer too small for a chunk header: zero padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk completes a record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def finished_records(log, wait_s=60.0):
    """The log's records once its exit record is on disk: wandb-core may still be flushing after finish() returns."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            found = list(records(log))
        except Exception:  # a chunk only partly written yet
            found = []
        if any(r.WhichOneof("record_type") == "exit" for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def read_offline_run(run_dir, history=None):
    """(summary, run record) of an offline run; `history`, a list, receives each logged history step as a dict."""
    (log,) = run_dir.glob("*.wandb")
    summary, run = {}, None
    for record in finished_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "run":
            run = record.run
        elif kind == "history" and history is not None:
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
    return summary, run


@pytest.mark.integration
def test_run_summary_holds_the_result_row(tmp_path):
    config = RunConfig(model="cnn", datamodule="mnist5k", precision="bf16-mixed", batch_size=64, wandb="offline",
                       sweep_name="sweep-1")
    logger = wandb_log.run_logger(config, tmp_path)
    logger.log_metrics({"train/loss": 0.5}, step=1)
    row = make_row(precision="bf16-mixed", train_samples_per_s=1234.5, peak_gpu_mem_allocated_mb=None)
    wandb_log.finish_run(logger, row)
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    summary, run = read_offline_run(run_dir)
    assert summary["train_samples_per_s"] == 1234.5
    assert summary["metric_value"] == 0.98 and summary["status"] == "ok"
    assert "peak_gpu_mem_allocated_mb" not in summary  # empty cells are not logged as zeros
    assert run.run_group == "sweep-1"
    # the whole identity as the label spells it: model, data, devices, precision, batch size, profile (eager and
    # the other default settings are left out, as in the name)
    assert list(run.tags) == ["cnn", "mnist5k", "cpu", "bf16-mixed", "bs64", "quick"]
    assert run.display_name == config.label() and "bs64" in run.display_name
    assert run.project == "dnnbench"
    assert not (run_dir / "files" / "requirements.txt").exists()  # the sweep's summary run lists the packages
    other = RunConfig(model="cnn", datamodule="mnist5k", compile=True, compile_mode="max-autotune",
                      model_args={"lr": 0.01})
    assert {"compiled", "max-autotune", "lr=0.01"} <= set(wandb_log.identity_tags(other))


def test_disabled_mode_logs_nothing(tmp_path):
    assert wandb_log.run_logger(RunConfig(model="cnn", datamodule="mnist5k", wandb="disabled"), tmp_path) is None
    wandb_log.log_sweep(tmp_path / "missing.csv", tmp_path, "s", "disabled")
    assert not (tmp_path / "wandb").exists()


@pytest.mark.integration
def test_sweep_summary_run_holds_the_results_table(tmp_path):
    csv_path = write_csv(tmp_path / "results.csv", [make_row(), make_row(model="mlp", status="oom")])
    wandb_log.log_sweep(csv_path, tmp_path, "sweep-2", "offline")
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    summary, run = read_offline_run(run_dir)
    assert summary["runs"] == 2 and summary["ok"] == 1
    assert summary["results/_type"] == "table-file" and summary["results/nrows"] == 2
    assert run.display_name == "sweep-2-summary"
    assert "torch" in (run_dir / "files" / "requirements.txt").read_text()  # once per sweep, here
    table = json.loads((run_dir / "files" / summary["results/path"]).read_text())
    cells = [dict(zip(table["columns"], row)) for row in table["data"]]
    assert [c["train_samples_per_s"] for c in cells] == [1000.0, None]  # numbers the W&B UI can chart; empty: None
    assert cells[0]["batch_size"] == 128 and cells[0]["metric_value"] == 0.98 and cells[0]["model"] == "cnn"
    assert "sweep" in run.tags  # the group's summary run, not a blank 25th run
    bars = json.loads((run_dir / "files" / summary["charts/train_samples_per_s_table/path"]).read_text())
    assert bars["columns"] == ["config_label", "train_samples_per_s"] and [r[1] for r in bars["data"]] == [1000.0]


@pytest.mark.integration
def test_project_and_entity_come_from_the_config_and_the_flags(tmp_path):
    from bench.cli import build_parser

    args = build_parser().parse_args(["run", "--wandb-project", "mine", "--wandb-entity", "team"])
    assert (args.wandb_project, args.wandb_entity) == ("mine", "team")
    config = RunConfig(model="cnn", datamodule="mnist5k", wandb="offline", wandb_project="mine")
    wandb_log.finish_run(wandb_log.run_logger(config, tmp_path), make_row())
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    assert read_offline_run(run_dir)[1].project == "mine"


@pytest.mark.integration
def test_a_run_logs_per_step_curves_and_its_pictures(tmp_path):
    from PIL import Image

    from bench.results.io import flatten
    from bench.run.child import run

    config = RunConfig(model="tests.fake_models:FakeNet", datamodule="synthetic", batch_size=8, profile="quick",
                       wandb="offline", sweep_name="s", data_args={"num_samples": 48})
    pictures = tmp_path / "artifacts" / config.run_id
    pictures.mkdir(parents=True)
    Image.new("RGB", (16, 16), "red").save(pictures / "samples.png")  # as a model's save_artifacts leaves them
    row = flatten(run(config, tmp_path))
    assert row["status"] == "ok", row["message"]
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    history: list[dict] = []
    summary, _ = read_offline_run(run_dir, history)
    steps = [h for h in history if "step/loss" in h]
    assert len(steps) == row["steps"] == 48 // 8  # every training step, not one point per 50
    assert [h["trainer/global_step"] for h in steps] == list(range(1, row["steps"] + 1))
    assert sum("step/samples_per_s" in h for h in history) == row["steps"] - 1
    assert any(h.get("artifacts/samples/_type") == "image-file" for h in history)
    assert summary["train_samples_per_s"] == float(f"{row['train_samples_per_s']:.6g}")  # as results.csv has it


@pytest.mark.integration
def test_a_sweeps_wandb_summaries_equal_its_csv_rows_and_its_summary_run_holds_the_plan(tmp_path):
    """Each run's summary is its results.csv row (same numbers, `started_at`, `status` spelling, host, versions,
    commit, noise_warning, devices_used, quality_drift); the sweep's summary run carries the sweep's flags and the tag
    `sweep`."""
    from bench.core.columns import NUMERIC

    out = tmp_path / "sweep"
    args = [a for a in sweep_args(out, "--precisions", "32-true,bf16-mixed") if a not in ("--wandb", "disabled")]
    args[args.index(FAKE)] = "mlp"  # a model with a quality metric: the bf16-mixed row has a quality_drift
    env = clean_wandb_env(tmp_path, WANDB_MODE="offline")
    result = subprocess.run([sys.executable, "-m", "bench", *args, "--wandb", "offline"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {row["reproduce"]: row for row in read_rows(out / "results.csv")}
    runs = {}
    for run_dir in (out / "wandb").glob("offline-run-*"):
        summary, run = read_offline_run(run_dir)
        runs[run.display_name] = (summary, run)
    sweep_summary, sweep_run = runs.pop(f"{out.name}-summary")
    assert len(runs) == len(rows) == 2
    for summary, _run in runs.values():
        row = rows[summary["reproduce"]]
        for column, cell in row.items():
            if column in NUMERIC and cell == "":
                assert column not in summary, column
            elif column in NUMERIC:
                assert summary[column] == float(cell), column
            else:
                assert str(summary[column]) == cell, column
        assert summary["status"] == "ok" and summary["started_at"] == row["started_at"] != ""
        assert {"hostname", "torch_version", "lightning_version", "git_commit", "noise_warning",
                "devices_used"} <= set(summary)
        assert ("quality_drift" in summary) == (summary["precision"] == "bf16-mixed")
    assert "sweep" in sweep_run.tags and out.name in sweep_run.tags
    config = {item.key: json.loads(item.value_json) for item in sweep_run.config.update}
    config = {key: value.get("value", value) if isinstance(value, dict) else value for key, value in config.items()}
    assert config["planned_runs"] == 2 and "bf16-mixed" in config["precisions"], config
    assert config["command"].startswith("dnnbench run") and sweep_summary["runs"] == 2


@pytest.mark.integration
def test_a_run_that_crashes_has_its_error_row_as_summary_and_is_marked_failed(tmp_path):
    from bench.run.child import run

    config = RunConfig(model=FAKE, datamodule="synthetic", batch_size=16, profile="smoke", wandb="offline",
                       sweep_name="s", model_args={"mode": "crash"})
    row = flatten(run(config, tmp_path, devices_used="cpu:0"))
    assert row["status"] == "error"
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    summary, _ = read_offline_run(run_dir)
    assert summary["status"] == "error" and "boom" in summary["message"] and summary["devices_used"] == "cpu:0"
    assert summary["started_at"] == row["started_at"]
    (exit_record,) = [r.exit for r in finished_records(next(run_dir.glob("*.wandb")))
                      if r.WhichOneof("record_type") == "exit"]
    assert exit_record.exit_code == 1  # W&B shows the run as failed


SERVICE_DIES = """
import sys
from pathlib import Path
from bench.launch import child_process as launch
from bench.integrations import wandb_log
from bench.run import wandb_run
from bench.core.config import RunConfig
from bench.results.io import append_row
from wandb.sdk import wandb_setup

out = Path(sys.argv[1])
config = RunConfig(model="tests.fake_models:FakeNet", datamodule="synthetic", batch_size=16, profile="smoke",
                   wandb="offline")
assert wandb_log.online_problem().startswith("no W&B API key")  # as a sweep asked for online does at its start
launch.share_wandb_service([config])
service = wandb_setup._singleton._connection._proc._process
service.kill()
service.wait()
logger = wandb_run.start(config, out)  # what each later run does
assert logger is not None, "the run was not logged"
logger.experiment.finish()
append_row(out / "results.csv", config.columns() | {"status": "ok", "schema_version": 3})
wandb_log.log_sweep(out / "results.csv", out, "sweep", "offline")  # the sweep's summary
print("done")
"""


@pytest.mark.integration
def test_a_dead_shared_wandb_service_costs_no_log_no_summary_and_no_exit_traceback(tmp_path):
    """Should the sweep's shared W&B service die, later runs and the summary start their own; and W&B's own
    console output stays out of the sweep's (issue 23)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {
        "NETRC": str(tmp_path / "no-netrc"), "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config")}
    done = subprocess.run([sys.executable, "-c", SERVICE_DIES, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr[-3000:]
    assert "wandb:" not in done.stderr, done.stderr[-3000:]
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) >= 2  # the run and the summary (and a failed try)


CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens there, a connection is refused at once


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


@pytest.mark.integration
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


@pytest.mark.integration
def test_a_wandb_that_goes_away_mid_sweep_turns_the_run_offline_not_into_an_error(tmp_path, monkeypatch):
    """The sweep's check passed but W&B is gone when the run starts: that run logs offline and its row is ok."""
    for key, value in clean_wandb_env(tmp_path, WANDB_API_KEY="k" * 40, WANDB_BASE_URL=CLOSED_PORT,
                                      WANDB_INIT_TIMEOUT="3", WANDB_SILENT="true").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    config = RunConfig(model=FAKE, datamodule="synthetic", batch_size=16, profile="smoke", time_limit_s=120,
                       wandb="online")
    row = flatten(run_child(config, tmp_path))
    assert row["status"] == "ok", row["message"]
    log = (tmp_path / "runs" / f"{config.run_id}.log").read_text()
    assert "W&B online logging failed for this run" in log
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_wandb_gets_the_inference_table(tmp_path):
    from bench.integrations import wandb_log

    folder = sweep_folder_with_curve(tmp_path / "s", INFERENCE_CURVE)
    table = wandb_log.inference_table(folder / "results.csv")
    assert len(table.data) == 6 and "speedup_vs_eager" in table.columns
    assert wandb_log.inference_table(write_csv(tmp_path / "results.csv", [make_row()])) is None
