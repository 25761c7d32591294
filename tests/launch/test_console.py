"""bench/launch/console.py: progress in place on a terminal, as plain lines in a log."""

import io
import subprocess
import sys

import pytest

from bench.core import progress
from bench.core.config import RunConfig
from bench.core.row import Cells, RunRow
from bench.launch import console as console_module
from bench.launch.console import Console, common_label, fit, result_line
from tests.helpers import ROOT, fake_config


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_moves_in_place_on_a_terminal_and_as_plain_lines_in_a_log(tmp_path, monkeypatch):
    config = RunConfig(model="mlp", datamodule="mnist5k")
    path = progress.path_for(tmp_path, config.run_id)
    path.parent.mkdir(parents=True)
    progress.write(path, pid=1, stage="fit", epoch=1, max_epochs=3, step=40)
    monkeypatch.setattr(console_module, "PLAIN_EVERY_S", 0.0)
    log, terminal = io.StringIO(), Terminal()
    for stream in (log, terminal):
        console = Console(total=2, stream=stream)
        console.tick([(config, "cpu:0", path)])
        progress.write(path, pid=1, stage="fit", epoch=2, max_epochs=3, step=80)
        console.tick([(config, "cpu:0", path)])
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines() == [
        f"dnnbench: start {config.label()} [cpu:0]",
        f"dnnbench [0/2] 0 s · epoch 2/3 step 40: {config.label()} [cpu:0]",
        f"dnnbench [0/2] 0 s · epoch 3/3 step 80: {config.label()} [cpu:0]"]
    assert terminal.getvalue().count("\r\x1b[K") == 2 and "epoch 3/3 step 80" in terminal.getvalue()


def test_the_status_line_shows_elapsed_time_and_an_eta_and_is_cut_at_a_word(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(console_module.time, "monotonic", lambda: clock[0])
    console = Console(total=4, show=False)
    clock[0] += 70
    assert console.progress_text() == "[0/4] 1:10"  # no ETA before a run has finished
    console.finished(fake_config(), RunRow(fake_config(), "ok"))
    clock[0] += 20  # 70 s a run so far: three left, the current one 20 s in
    assert console.progress_text() == "[1/4] 1:30, ETA 3:10"
    line = "dnnbench [1/4] 1:30, ETA 3:10 · epoch 2/3 step 40: transformer seq2seq bf16-mixed compiled bs256"
    assert fit(line, 60) == "dnnbench [1/4] 1:30, ETA 3:10 · epoch 2/3 step 40…"
    assert all(len(fit(line, width)) <= width and line.startswith(fit(line, width)[:-1]) for width in range(20, 100))


def result(**cells):
    config = RunConfig(model="mlp", datamodule="mnist5k", batch_size=64)
    return RunRow(config).add(Cells({"metric_name": "acc", "metric_value": 0.922, "wall_s": 12.34} | cells))


def test_a_result_line_names_the_split_the_latency_batch_and_fits_120_columns():
    row = result(metric_target=0.93, metric_direction="max", target_metric_value=0.931, reached_target="yes",
                 time_to_target_s=1.248, train_samples_per_s=14110.3, infer_samples_per_s=1281000.0,
                 latency_p50_ms=35.98)
    text = result_line("  mlp  ok", row)
    assert text.replace("\n      ", " · ") == (
        "  mlp  ok  val acc 0.931 ≥ 0.93 at 1.25 s · test acc 0.922 · train 14,100 · infer 1.28 M samples/s · "
        "p50 36 ms @ bs64 · wall 12.3 s")
    assert all(len(line) <= 120 for line in text.splitlines())
    missed = result(metric_target=0.93, target_metric_value=0.91, reached_target="no", epochs=1)
    assert "val acc 0.91 < 0.93 in 1 epoch · test acc 0.922" in result_line("  mlp  ok", missed)


def test_a_failure_keeps_its_whole_reason_and_a_shared_device_its_warning_within_120_columns():
    reason = ("cifar10 data not in /home/someone/a/rather/long/path/to/the/data/cifar-10-batches-py (7 of 7 files "
              "missing, e.g. data_batch_1): --data-arg download=true fetches it, --data-arg data_dir=FOLDER names a "
              "copy")
    config = RunConfig(model="resnet", datamodule="cifar10", batch_size=64)
    text = result_line("  resnet cifar10  error", RunRow(config, "error", reason).add(
        Cells({"noise_warning": "shared device: other processes used 1.2 of 2 CPU cores " * 3})))
    lines = text.splitlines()
    assert all(len(line) <= 120 for line in lines) and len(lines) >= 4
    assert " ".join(line.strip() for line in lines).startswith(f"resnet cifar10  error  {reason} warning: shared")


def test_the_first_line_says_once_what_every_run_shares():
    configs = [RunConfig(model=m, datamodule="mnist5k", precision=p) for m in ("mlp", "cnn") for p in ("32-true",
                                                                                                      "bf16-mixed")]
    assert common_label(configs) == "mnist5k cpu bs128 quick"
    console = Console(total=4, show=False, configs=configs)
    assert [console.name(c) for c in configs] == ["mlp 32-true", "mlp bf16-mixed", "cnn 32-true", "cnn bf16-mixed"]
    repeats = [RunConfig(model="mlp", datamodule="mnist5k", seed=seed, repeat=seed) for seed in range(3)]
    assert [Console(total=3, show=False, configs=repeats).name(c) for c in repeats] == [
        "mlp seed 0", "mlp seed 1", "mlp seed 2"]
    # --repeats auto plans one process a config and adds the next ones as it goes: each names its seed from the first
    first = repeats[:1]
    auto = Console(total=1, show=False, configs=first, more_processes=True)
    assert [auto.name(c) for c in repeats] == ["mlp seed 0", "mlp seed 1", "mlp seed 2"]


@pytest.mark.integration
def test_two_single_run_smoke_sweeps_compare_clean_and_every_console_line_fits_120_columns(tmp_path):
    """The issue's bar: two one-config sweeps of cnn, then `compare` of their folders exits 0; no console line is
    wider than 120 characters (the run lines, the table, the notes, compare's own warnings aside from its table).
    cnn, as the bar says: smoke mlp's few-millisecond speed window moved 42,600-65,000 samples/s between identical
    sweeps, past the 20 % a single run may move (4 runs of this test: 2 failed); smoke cnn's 8,400-9,500."""
    lines = []
    for name in ("base", "new"):
        result = subprocess.run([sys.executable, "-m", "bench", "run", "--profile", "smoke", "--models", "cnn",
                                 "--devices", "cpu", "--wandb", "disabled", "--no-progress",
                                 "--out", str(tmp_path / name)], cwd=ROOT, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        lines += (result.stdout + result.stderr).splitlines()
    assert any(line.startswith("  cnn  ok  ") for line in lines), lines
    assert not [line for line in lines if len(line) > 120]
    compared = subprocess.run([sys.executable, "-m", "bench", "compare", str(tmp_path / "base"),
                               str(tmp_path / "new")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "0 regression(s)" in compared.stdout

