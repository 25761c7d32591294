"""The sweep (step: configs -> an executor's runs (children here, or Ray tasks) -> rows appended by the one writer,
with resume: bench/launch/resume.py).

One sweep at a time writes a folder; this process alone writes its CSV, each row as its run ends. SIGINT/SIGTERM
stop it between rows: running children are killed, finished rows stay, `--resume` continues.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from bench.core import config as cfg
from bench.core.auto_repeats import AutoRepeats
from bench.core.config import RunConfig
from bench.core.errors import SweepError, SweepInterrupted
from bench.core.inference_columns import INFERENCE_FILE
from bench.core.private_files import open_own_file, private_folder
from bench.core.repeats_columns import REPEATS_FILE
from bench.core.row import RunRow
from bench.launch.console import Console
from bench.launch.repeats import RepeatSchedule
from bench.launch.resume import runs_to_do
from bench.results.drift import with_quality_drift
from bench.results.io import ResultsError, append_inference_rows, append_row, last_of_each_run


def open_sweep_folder(out: Path) -> Path:
    """Create the sweep folder and its `runs/` (checked: the user's own, writable by nobody else) and check it is
    writable, and give the runs private caches, before the first run."""
    for folder in (out, out / "runs"):
        private_folder(folder, "output folder")
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")  # a fresh name: nothing planted is followed
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise SweepError(f"output folder {out} is not writable ({exc.strerror or exc})") from None
    use_private_caches()
    return out


def use_private_caches() -> None:
    """DNNBENCH_CACHE and torch.compile's caches (Inductor's, Triton's) are folders of the user's own, checked like
    --out, and named in the environment every run inherits (and records).

    torch's default, /tmp/torchinductor_<user>, is a name another user of the machine can create first and fill with
    cache entries that torch unpickles: code run as the sweep's user. A cache folder set in the environment is
    checked, not replaced, unless it is that default (torch writes it back into the environment once it used it).
    """
    cache = Path(os.environ.get("DNNBENCH_CACHE") or Path.home() / ".cache" / "dnnbench")  # as lightning_modules.base
    private_folder(cache, "cache folder (DNNBENCH_CACHE)", 0o700)
    compile_caches = {"TORCHINDUCTOR_CACHE_DIR": cache / "torchinductor", "TRITON_CACHE_DIR": cache / "triton"}
    for variable, default in compile_caches.items():
        chosen = os.environ.get(variable)
        folder = Path(chosen if chosen and chosen != torch_default_cache() else default).absolute()
        os.environ[variable] = str(private_folder(folder, f"compile cache folder ({variable})", 0o700))


def torch_default_cache() -> str | None:
    """Inductor's shared default cache folder (/tmp/torchinductor_<user>); None where this torch does not say."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        return os.path.abspath(default_cache_dir())
    except Exception:  # another torch version's layout: a set folder is then only checked
        return None


@contextmanager
def hold_sweep_folder(out: Path) -> Iterator[None]:
    """Hold the sweep folder for this sweep's life: a second sweep on it is refused, naming the one that holds it.

    An flock on `.dnnbench.lock`: the OS drops it when this process ends however it ends (children do not inherit
    it), so a killed sweep never leaves a stale lock behind. A link or anything but a file of the user's there is
    refused (a lock file replaced by another would let two sweeps hold one folder).
    """
    try:
        handle = os.fdopen(open_own_file(out / ".dnnbench.lock", os.O_RDWR | os.O_CREAT, 0o644), "r+")
    except OSError as exc:
        raise SweepError(f"output folder {out} is not usable ({exc.strerror or exc})") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "holder unknown"
            raise SweepError(f"{out} is in use by another sweep ({holder}): wait for it to end, "
                             "or --out another folder") from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        yield




class StopSignals:
    """SIGINT / SIGTERM set a flag, which the sweep loop checks between events (so never mid-row)."""

    def __init__(self):
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.note)
        return self

    def note(self, signum: int, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C does not wait (e.g. for a Ray cluster that never answers)
        self.signum = signum

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def check(self, finished: int, total: int, csv_path: Path) -> None:
        if self.signum is not None:
            raise SweepInterrupted(self.signum, f"stopped by {signal.Signals(self.signum).name}: its running "
                                   f"run(s) were killed; {finished} of {total} runs are in {csv_path} "
                                   "(--resume continues)")


class RunQueue:
    """The configs still to run, handed out in order; one that is not 32-true waits for its 32-true run, so its
    quality drift can be filled in whatever order parallel runs finish."""

    def __init__(self, todo: list[RunConfig]):
        self.pending, self.running = [], []  # type: list[RunConfig], list[RunConfig]
        self.unfinished: Counter = Counter()
        self.baseline: dict[int, tuple[str, ...]] = {}
        for config in todo:
            self.add(config)

    def __bool__(self) -> bool:
        return bool(self.pending or self.running)

    def next_ready(self) -> RunConfig | None:
        return next((c for c in self.pending if self.unfinished[self.baseline.get(id(c), ())] == 0), None)

    def add(self, config: RunConfig) -> None:
        """A run to do (also one decided while the sweep runs: `--repeats auto`'s next process of a config)."""
        self.pending.append(config)
        self.unfinished[config.key()] += 1
        if config.precision != "32-true":
            self.baseline[id(config)] = cfg.run_key(config.columns() | {"precision": "32-true"})

    def start(self, config: RunConfig) -> None:
        self.pending.remove(config)
        self.running.append(config)

    def finish(self, config: RunConfig) -> None:
        self.running.remove(config)
        self.unfinished[config.key()] -= 1


class Executor(Protocol):
    """What starts a sweep's runs (children of this process, or Ray tasks on a cluster): entered for the sweep, it
    yields (config, row) as runs end and None every tick while runs are in flight; the sweep alone writes rows."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None: ...

    def running(self) -> list[tuple[RunConfig, str, Path]]:
        """(config, devices it runs on, its progress file) of each run in flight."""
        ...

    def run(self, queue: RunQueue, sweep_dir: Path) -> Iterator[tuple[RunConfig, RunRow] | None]: ...


def executor_for(configs: list[RunConfig], parallel: int | None, executor: str, ray_address: str | None) -> Executor:
    """The engine that starts the runs: children of this process, or Ray tasks on a cluster."""
    if executor == "ray":
        from bench.launch.ray_executor import RayExecutor

        return RayExecutor(ray_address)
    from bench.launch.local_executor import LocalExecutor

    return LocalExecutor(parallel, configs)


def run_sweep(configs: list[RunConfig], sweep_dir: Path, resume: bool, progress: bool = True,
              parallel: int | None = 1, executor: str = "local", ray_address: str | None = None,
              auto: AutoRepeats | None = None) -> list[dict]:
    """Run every config not yet done; returns all rows of the sweep (as CSV cells).

    Whatever the executor, rows come back here and this process alone appends them to the CSV. With `auto`
    (`--repeats auto`), each finished row may queue its config's next process (bench/launch/repeats.py).
    """
    csv_path = sweep_dir / "results.csv"
    todo, done = runs_to_do(configs, csv_path, resume)
    schedule = RepeatSchedule(auto, sweep_dir / REPEATS_FILE)  # without --repeats auto it adds nothing
    todo += schedule.resumed(configs, todo, done)
    console = Console(len(todo), show=progress, configs=todo, more_processes=auto is not None)
    queue = RunQueue(todo)
    schedule.announce(console)  # decisions the resumed rows made
    with StopSignals() as stop, executor_for(todo, parallel, executor, ray_address) as engine:
        for event in engine.run(queue, sweep_dir):
            if event is None:
                console.tick(engine.running())
            else:  # a finished run's row is written even when a stop is pending
                config, row = event
                row = write_inference_rows(sweep_dir / INFERENCE_FILE, with_quality_drift(row, done))
                done.append(append_row(csv_path, row))  # after its inference rows: see write_inference_rows
                console.finished(config, row)
                schedule.after(config, done, queue, console)
            stop.check(len(done), len(configs), csv_path)
    console.clear()
    return last_of_each_run(done)


def write_inference_rows(csv_path: Path, row: RunRow) -> RunRow:
    """A run's inference.csv rows (its row's `inference`), written before its results row: a sweep stopped between
    the two re-runs the run on --resume, and the reader keeps a run's last rows. Returns the row to write (with a
    note where they could not be written)."""
    try:
        append_inference_rows(csv_path, list(row.inference))
    except (ResultsError, OSError) as exc:  # the results row must still be written
        return row.noted(f"inference.csv not written: {exc}")
    return row
