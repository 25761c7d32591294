"""The command line a person reads: defaults in --help, epochs per profile in `list`, console lines with units."""

import argparse
import re

import lightning_modules
from bench.cli import build_parser, main
from bench.core.columns import Status
from bench.core.config import PROFILES, RunConfig
from bench.core.profiles import SIZES
from bench.core.row import Cells, RunRow
from bench.launch.sweep import console_summary


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


def test_console_line_has_units_batch_size_and_the_noise_warning():
    config = RunConfig(model="mlp", datamodule="mnist5k", batch_size=64)
    row = RunRow(config).add(Cells({"metric_name": "acc", "metric_value": 0.98123, "train_samples_per_s": 14110.3,
                                    "infer_samples_per_s": 1281000.0, "latency_p50_ms": 0.04997, "wall_s": 12.3,
                                    "noise_warning": "shared device: other processes used 1.2 of 2 CPU cores"}))
    line, warning = console_summary(row).split("\n")
    assert line == ("test acc 0.9812, train 14110 samples/s, infer 1.281 M samples/s, p50 0.04997 ms, batch 64, "
                    "12.3 s")
    assert warning.strip() == "warning: shared device: other processes used 1.2 of 2 CPU cores"
    assert console_summary(RunRow(config, Status.OOM, "CUDA out of memory")) == "CUDA out of memory"
