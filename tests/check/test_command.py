"""bench/check/command.py: the harness probe's lines (through the real launch path on a tiny model), the table, the
verdict and the exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.check import command as check
from bench.check.machine import BAD, OK, WARN, Line
from tests.helpers import ROOT


def test_probe_lines_judge_ratios_and_spread(monkeypatch, tmp_path):
    from bench.core.columns import Status
    from bench.core.row import RunRow
    from bench.launch import child_process

    overhead = {"runner": [100.0, 101.0, 130.0], "device_cost": [110.0, 110.0, 110.0], "bare": [100.0] * 3,
                "expert": [200.0] * 3, "expert_device_cost": [200.0] * 3}
    monkeypatch.setattr(child_process, "run_child", lambda config, out, probe_repeats: RunRow(config, probe=overhead))
    lines = {line.what: line for line in check.probe_lines("cuda", "cnn", tmp_path)}
    assert lines["Trainer loop / bare Trainer"].mark == OK  # 1.01
    assert lines["model cost / expert loop"].unreliable  # 0.55
    assert lines["spread of repeats"].unreliable and "29.7%" in lines["spread of repeats"].found
    monkeypatch.setattr(child_process, "run_child",
                        lambda config, out, probe_repeats: RunRow(config, Status.TIMEOUT, "killed"))
    [failed] = check.probe_lines("cpu", "mlp", tmp_path)
    assert failed.mark == BAD and failed.unreliable


def test_render_and_exit_verdict():
    fit = [Line(OK, "a", "x"), Line(WARN, "b", "y", "do z", unreliable=False)]
    assert "fit to benchmark (exit 0)" in check.verdict(fit) and "→ do z" in check.render(fit)
    assert "1 line(s)" in check.verdict(fit + [Line(BAD, "c", "broken", "fix", True)])


@pytest.mark.integration
def test_bad_devices_exit_2():
    with pytest.raises(ValueError):
        check.parse_devices("tpu")
    result = subprocess.run([sys.executable, "-m", "bench", "check", "--devices", "tpu"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unknown device 'tpu'" in result.stderr


@pytest.mark.integration
def test_check_runs_the_probe_through_the_launch_path():
    """The whole command on a tiny model: the probe is forked from the warm server into a run's child."""
    result = subprocess.run([sys.executable, "-m", "bench", "check", "--devices", "cpu", "--probe-model",
                             "tests.probe_models:ProbeNet", "--probe-repeats", "2"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1 where other work keeps this machine busy
    out = result.stdout
    for what in ("load average", "busy processes now", "CPU governor", "versions", "Trainer loop / bare Trainer",
                 "model cost / expert loop", "spread of repeats"):
        assert what in out, out
    assert "harness on cpu (tests.probe_models:ProbeNet, 2 repeats)" in out and "probe error" not in out


@pytest.mark.parametrize("repeats", [0, -1])
def test_fewer_than_one_probe_repeat_exits_2_with_one_line(capsys, repeats):
    from bench.check import command

    args = command.argparse.Namespace(devices="cpu", probe_model=None, probe_repeats=repeats, no_probe=False)
    assert command.main(args) == 2
    err = capsys.readouterr().err
    assert "--probe-repeats takes a whole number of at least 1" in err and len(err.strip().splitlines()) == 1
