"""The runner's errors (step: how any step reports bad input or an interrupted sweep to the command line).

Plain classes in a module with no heavy imports, so `dnnbench` can catch them without loading the steps that raise
them (report and compare never load torch).
"""

from __future__ import annotations


class PlanError(ValueError):
    """Bad input: one line on stderr, exit code 2, before any run starts."""


class SweepError(ValueError):
    """A sweep folder that cannot be used: reported in one line, exit 2, before anything runs."""


class ResultsError(ValueError):
    """A results file that cannot be used, with a one-line reason."""


class SweepInterrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM stopped the sweep: its running children were killed, finished rows are on disk.

    A BaseException, as KeyboardInterrupt is: SIGTERM's handler raises it wherever the process is, and an `except
    Exception` there (a library's import guard, an optional measurement) must not swallow the stop and let the sweep
    run on to exit 0."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = 128 + signum  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them
