"""Flags that look numeric to str.isdigit but are not integers ('²'), and a relative import path: one line, exit 2."""

import pytest

from bench.cli import main

RUN = ["run", "--profile", "smoke", "--no-progress", "--wandb", "disabled"]


@pytest.mark.parametrize(("flags", "fragment"), [
    (["--models", "mlp", "--devices", "cpu", "--infer-batch-sizes", "²"], "--infer-batch-sizes"),
    (["--models", "mlp", "--devices", "cpu:²"], "device count"),
    (["--models", "mlp", "--devices", "cpu", "--parallel", "²"], "--parallel"),
    (["--models", "..evil:X", "--devices", "cpu"], "must look like"),
])
def test_bad_flag_is_one_line_and_exit_2(tmp_path, capsys, flags, fragment):
    assert main(RUN + flags + ["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "out").exists()
