"""dnnbench's runner. Importing it makes dnnbench's own packages resolve from dnnbench's install, first.

Runs work in the user's folder with it on the import path (so a model given by import path resolves), and
Lightning projects often have folders named `datamodules/` or `lightning_modules/` there. Interpreters that put the
working directory first (`python -c` for the warm server, `python -m bench.child`) would import those instead of
ours; this finder, installed before any of our modules imports another, keeps the names ours in every process
that imports `bench` (children and forks included). A user's own module under one of these names cannot be
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
