"""Planning refuses input that would otherwise reach the standard library or a run unchecked (issue 23): one line
on stderr, exit 2, before anything runs."""

import pytest
from test_failures import FAKE, one_line_error

from bench.cli import main


@pytest.mark.parametrize("args, fragment", [
    (["--data", "synthetic", "--data-arg", "shape=(0,28,28)"], "must be at least 1"),
    (["--data", "synthetic", "--data-arg", "num_samples=0"], "must be at least 1"),
    (["--out", "LOOP"], "cannot be used"),
    (["--seed", str(2**32 - 1), "--repeats", "2"], "the last repeat's too"),
    (["--repeats", "1000000000"], "runs in one sweep"),
])
def test_bad_input_exits_2_in_one_line_before_anything_runs(tmp_path, capsys, args, fragment):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # a symlink to itself: resolving it never ends
    args = [str(loop / "out") if arg == "LOOP" else arg for arg in args]
    base = ["run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled"]
    assert main(base + (args if "--out" in args else [*args, "--out", str(tmp_path / "out")])) == 2
    one_line_error(capsys.readouterr().err, fragment)
    assert not (tmp_path / "out").exists()
