"""bench/launch/console.py: progress in place on a terminal, as plain lines in a log."""

import io

from bench.core import progress
from bench.launch import console as console_module
from bench.launch.console import Console
from tests.helpers import fake_config


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_moves_in_place_on_a_terminal_and_as_plain_lines_in_a_log(tmp_path, monkeypatch):
    config = fake_config()
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
        f"dnnbench [0/2] epoch 2/3 step 40: {config.label()} [cpu:0]",
        f"dnnbench [0/2] epoch 3/3 step 80: {config.label()} [cpu:0]"]
    assert terminal.getvalue().count("\r\x1b[K") == 2 and "epoch 3/3 step 80" in terminal.getvalue()
