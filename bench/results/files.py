"""Which results files a command reads (step: the paths a user names -> results CSVs): a CSV named, or every
results.csv in or below a folder (a sweep, a folder of sweeps), as report, compare and history all take them."""

from __future__ import annotations

from pathlib import Path

from bench.results.io import ResultsError


def results_files(paths: list[Path]) -> list[Path]:
    """The CSVs named, and every results.csv in or below each folder named (a sweep, a folder of sweeps): how
    report, compare and history read the paths they are given."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(path.rglob("results.csv"))
            if not inside:
                raise ResultsError(f"{path}: no results.csv in this folder or below it")
            found += inside
        else:
            found.append(path)  # load_results names a missing file
    return list(dict.fromkeys(found))
