"""bench/cli.py, the command line a person reads: defaults in --help, `list`, one-line argument errors, the entry
point."""

import argparse
import re
import subprocess
import sys

import pytest

import lightning_modules
from bench.cli import build_parser, main
from bench.core.config import PROFILES
from bench.core.profiles import SIZES


def test_run_help_gives_every_flag_a_help_text_and_its_default(capsys):
    parser = build_parser()
    run = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    options = run.format_help().split("\noptions:\n")[1]
    entries = {" ".join(entry.split()).split(" ")[0].rstrip(","): " ".join(entry.split())
               for entry in re.split(r"\n  (?=-)", "\n" + options) if entry.strip()}
    flags = [a.option_strings[-1] for a in run._actions if a.option_strings and a.dest != "help"]
    assert set(flags) <= set(entries)
    for flag in flags:
        assert "default" in entries[flag], entries[flag]
    assert "(default: quick)" in entries["--profile"] and "(default: 32-true)" in entries["--precisions"]
    assert entries["--resume"].endswith("(default: off)")
    assert entries["--models"].count("default") == 1  # each default once


def test_list_shows_every_model_with_its_epochs_and_sizes_the_datamodules_and_devices(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name, cls in lightning_modules.items():
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
        assert all(f"{profile}={cls.bench.epochs[profile]}" in lines[at] for profile in PROFILES), lines[at]
        assert [line.split()[0] for line in lines[at + 1: at + 1 + len(SIZES)]] == list(SIZES)
    large = lightning_modules.get("resnet").bench.size("large")
    assert any(line.split()[:1] == ["large"] and f"batch={large.batch_size}" in line for line in lines)
    assert "mnist5k" in out and "32-true" in out and "devices here: cpu" in out


@pytest.mark.parametrize("argv, fragment", [
    (["run", "--repeats", "abc"], "--repeats: takes a positive integer or auto; got 'abc'"),
    (["run", "--repeats", "auto", "--precision-target", "five"], "invalid float value: 'five'"),
    (["compare", "base.csv"], "required: new"),
])
def test_argument_syntax_errors_are_one_line_too(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "usage" not in err


@pytest.mark.integration
def test_cli_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "bench", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "dnnbench" in result.stdout or "usage" in result.stdout.lower()


def test_a_library_that_cannot_be_mapped_is_one_line_and_exit_2(capsys):
    from bench.cli import run_command

    def handler(args):
        raise ImportError("libtorch_cpu.so: failed to map segment from shared object")  # as under ulimit -v 1500000

    assert run_command(argparse.Namespace(handler=handler, command="run")) == 2
    err = capsys.readouterr().err
    assert "cannot load libtorch_cpu.so" in err and "ulimit -v" in err and len(err.strip().splitlines()) == 1
