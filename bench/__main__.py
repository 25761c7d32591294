"""`python -m bench` and the `dnnbench` command (step: the process entry -> the command line)."""

import gc
import sys

from bench.warm_server import start_early


def main() -> int:
    start_early(sys.argv[1:])  # before the command line's imports (torch, lightning), so the two overlap
    from bench.cli import main as command_line

    code = command_line()
    gc.freeze()  # exit without walking every object torch, pandas and matplotlib made (seconds of teardown)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
