"""The first lines of every process a sweep starts (step: launching: a new interpreter -> dnnbench's own modules).

    python .../bench/launch/start.py warm-server     the warm server (bench/launch/warm_server.py)
    python .../bench/launch/start.py run JOB.json    a fresh run (bench/run/child.py), and each DDP rank of one

The processes work in the user's folder, and Lightning projects often have a `bench/` of their own there. `python -m`
and `python -c` put the working directory first on the import path, where that `bench/` would be imported instead of
ours (PYTHONSAFEPATH leaves it out, but only from Python 3.11, and pyproject allows 3.10). A script started by its path
puts its own folder there instead, never the working directory: this file takes that folder out too (it holds
modules such as `sweep` and `console` that must not become top-level names) and imports `bench` from the folder that
holds this checkout or install; `bench` then keeps our other top-level packages ours (bench/__init__.py). The user's
own modules still resolve: the run puts the sweep's `sys.path`, working directory included, in front once our modules
are in (bench.run.child.main). Lightning starts a DDP rank as `sys.executable` + this script's path + the same
arguments, so the ranks start here too.
"""

import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # the folder holding our bench/ (a checkout, or site-packages)


def import_own_bench() -> None:
    """Import dnnbench's `bench` from ROOT, whatever else on the import path is named `bench`."""
    sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or os.curdir) != HERE]
    sys.path.insert(0, ROOT)
    import bench  # noqa: F401 - ours: ROOT is first; its finder keeps our top-level names ours from here on

    del sys.path[0]  # the import path otherwise stays as Python made it (ROOT is on it where it was before)


def main() -> int:
    import_own_bench()
    what, args = sys.argv[1], sys.argv[2:]
    if what == "warm-server":
        from bench.launch.warm_server import serve

        serve()
        return 0
    from bench.run.child import main as run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
