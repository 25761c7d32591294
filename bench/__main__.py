"""`python -m bench` and the `dnnbench` command (step: the process entry -> the command line)."""

import gc
import os
import signal
import sys

from bench.launch.warm_client import start_early


def stopped_while_starting(signum, frame):
    """SIGTERM during the seconds of imports before the command line takes over: one line, exit 143 at once (no
    run has started; the warm server dies with this process)."""
    os.write(2, b"dnnbench: stopped by SIGTERM\n")
    os._exit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, stopped_while_starting)  # the command line sets its own handler when it starts
    start_early(sys.argv[1:])  # before the command line's imports (torch, lightning), so the two overlap
    from bench.cli import main as command_line

    code = command_line()
    gc.freeze()  # exit without walking every object torch, pandas and matplotlib made (seconds of teardown)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
