"""dnnbench's runner: one package per step of the data path, each importing only the packages below it.

    step                                             package             (imports only from)
    the command line: argv -> a subcommand           bench/cli.py        anything below
    the facts every step keys on: axes, profiles,    bench/core/         nothing of ours (no torch)
      RunConfig, columns, RunRow, errors, statistics
    results files: the one CSV reader and writer,    bench/results/      core
      where a file was made (provenance)
    optional services: W&B                           bench/integrations/ core, results
    planning: flags -> validated configs, no I/O     bench/plan/         core .. integrations
    one run in its own process: the child, the       bench/run/          core .. plan
      session, measure/, the inference curve,
      environment capture, the harness probe
    launching: configs -> children (warm server,     bench/launch/       core .. run
      local or Ray executor) -> rows to the writer
    reading back: tables, charts, pages, compare     bench/report/       core .. launch
    the machine check: load, clocks, the probe       bench/check/        core .. report

tests/test_layering.py keeps the order: an import against it fails CI. Models and data (lightning_modules/,
datamodules/) never import bench; bench reaches them only through their registries.

Importing `bench` also makes dnnbench's own packages resolve from dnnbench's install, first. Runs work in the user's
folder with it on the import path (so a model given by import path resolves), and Lightning projects often have
folders named `datamodules/` or `lightning_modules/` there, which would be imported instead of ours once the
working directory is on the import path; this finder, installed before any of our modules imports another, keeps
the names ours in every process that imports `bench` (children and forks included); in the processes a sweep starts,
`bench` itself comes from here first (bench/launch/start.py). A user's own module under one of these names cannot be
imported by import path (planning refuses it in one line, exit 2): rename the folder.
"""

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path

OWN_PACKAGES = ("bench", "lightning_modules", "datamodules", "registries")


class OwnPackagesFirst(importlib.abc.MetaPathFinder):
    """Finds dnnbench's top-level packages in the folder that holds this one, whatever `sys.path` says."""

    root = str(Path(__file__).resolve().parent.parent)

    def find_spec(self, name, path=None, target=None):
        if name not in OWN_PACKAGES:
            return None
        return importlib.machinery.PathFinder.find_spec(name, [self.root])


if not any(type(finder).__name__ == "OwnPackagesFirst" for finder in sys.meta_path):
    sys.meta_path.insert(0, OwnPackagesFirst())
