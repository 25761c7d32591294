"""`--repeats auto` in a sweep (bench/launch/repeats.py): further processes queued as rows finish, interleaved, each
config's decision in repeats.csv, --resume continuing an open decision, and the report's section; the sweep's
executor is a fake here, except in the one integration test."""

import itertools
import subprocess
import sys

import pytest

from bench.core.auto_repeats import AutoRepeats
from bench.core.config import RunConfig
from bench.core.row import Cells, RunRow
from bench.launch import sweep
from bench.report import precision
from bench.report.tables import prepare
from bench.results.io import read_rows
from bench.results.repeats import load_repeats
from tests.helpers import ROOT

STEADY = RunConfig(model="cnn", datamodule="mnist5k", profile="quick")
NOISY = RunConfig(model="mlp", datamodule="mnist5k", profile="quick")
RATES = {"cnn": [1000.0, 1010.0, 990.0, 1005.0, 995.0, 1002.0],
         "mlp": [1000.0, 1500.0, 700.0, 1200.0, 800.0, 1400.0, 650.0, 1300.0]}


class FakeEngine:
    """An executor that runs nothing: each config's row gets the next of its model's throughputs."""

    def __init__(self, most: int | None = None):
        self.rates = {model: itertools.cycle(values) for model, values in RATES.items()}
        self.most = most  # stop after this many rows (a sweep cut short)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def running(self):
        return []

    def run(self, queue, sweep_dir):
        for count in itertools.count():
            config = queue.next_ready()
            if config is None or count == self.most:
                return
            queue.start(config)
            queue.finish(config)
            yield config, RunRow(config).add(Cells({"train_samples_per_s": next(self.rates[config.model]),
                                                    "wall_s": 10.0}))


AUTO = AutoRepeats(target_pct=5, max_repeats=8)


def run(tmp_path, monkeypatch, engine, resume=False, auto=AUTO):
    monkeypatch.setattr(sweep, "executor_for", lambda *args, **kwargs: engine)
    return sweep.run_sweep([STEADY, NOISY], tmp_path, resume=resume, progress=False, auto=auto)


def test_processes_are_added_interleaved_until_each_config_stops(tmp_path, monkeypatch, capsys):
    rows = run(tmp_path, monkeypatch, FakeEngine())
    assert [r["model"] for r in rows[:4]] == ["cnn", "mlp", "cnn", "mlp"]  # one more each, in turn
    assert [int(r["repeat"]) for r in rows if r["model"] == "cnn"] == list(range(6))
    assert [int(r["seed"]) for r in rows if r["model"] == "mlp"] == list(range(8))
    decided = load_repeats(tmp_path / "repeats.csv").set_index("model")
    assert decided.loc["cnn", "outcome"] == "met" and decided.loc["cnn", "processes"] == 6
    assert decided.loc["cnn", "precision_pct"] <= 5 and decided.loc["cnn", "ci_coverage"] >= 0.95
    assert decided.loc["mlp", "outcome"] == "max-repeats" and decided.loc["mlp", "processes"] == 8
    assert decided.loc["mlp", "precision_pct"] > 5
    out = capsys.readouterr().out
    assert "within ±5 %" in out and "stopped at --max-repeats before ±5 % at 95 %" in out


def test_a_resumed_sweep_continues_an_open_decision(tmp_path, monkeypatch):
    run(tmp_path, monkeypatch, FakeEngine(most=5))
    assert len(read_rows(tmp_path / "results.csv")) == 5 and not (tmp_path / "repeats.csv").exists()
    rows = run(tmp_path, monkeypatch, FakeEngine(), resume=True)
    assert sorted((r["model"], int(r["repeat"])) for r in rows) == sorted(
        [("cnn", i) for i in range(6)] + [("mlp", i) for i in range(8)])
    assert len(load_repeats(tmp_path / "repeats.csv")) == 2
    again = run(tmp_path, monkeypatch, FakeEngine(), resume=True)  # all decided: nothing runs, nothing written
    assert len(again) == len(rows) and len((tmp_path / "repeats.csv").read_text().splitlines()) == 3


def test_the_report_shows_each_configs_interval_and_instability(tmp_path, monkeypatch):
    run(tmp_path, monkeypatch, FakeEngine())
    frame = prepare([tmp_path / "results.csv"])
    [(title, note, table)] = precision.sections(frame, [tmp_path / "results.csv"])
    assert title == "Precision over processes" and "Conover" in note and "⌈4·1.96²·CV²/0.01²⌉" in note
    table = table.set_index("model")
    assert table.loc["cnn", "processes"] == 6 and table.loc["cnn", "stopped"] == "met"
    assert table.loc["cnn", "target"] == "±5 %" and table.loc["cnn", "coverage"] == "97%"
    assert "std" in table.loc["mlp", "instability (pyperf)"]


def test_single_processes_have_no_precision_section(tmp_path, monkeypatch):
    run(tmp_path, monkeypatch, FakeEngine(), auto=None)
    frame = prepare([tmp_path / "results.csv"])
    assert precision.sections(frame, [tmp_path / "results.csv"]) == []


@pytest.mark.integration
def test_a_tiny_auto_repeat_sweep_stops_at_its_cap_and_reports_the_interval(tmp_path):
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "bench", "run", "--profile", "smoke", "--models", "mlp", "--devices", "cpu",
               "--wandb", "disabled", "--no-progress", "--repeats", "auto", "--max-repeats", "3", "--out", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_rows(out / "results.csv")
    assert [int(r["repeat"]) for r in rows] == [0, 1, 2] and {r["status"] for r in rows} == {"ok"}
    [decision] = load_repeats(out / "repeats.csv").to_dict("records")
    assert decision["outcome"] == "max-repeats" and decision["processes"] == 3 and decision["ci_coverage"] == 0.75
    assert decision["ci_low"] <= decision["median_samples_per_s"] <= decision["ci_high"]
    assert "stopped at --max-repeats before ±5 % at 95 %" in result.stdout
    assert "Precision over processes" in (out / "summary.md").read_text()
