"""The child entry (step: one config in its own process -> exactly one row, whatever happens).

`python .../bench/launch/start.py run JOB.json` (or forked by the warm server, bench/launch/warm_client.py): the job
names the config, the sweep folder, where to write the row and the parent's `sys.path`, so a model given by import
path resolves here exactly as it did when the sweep was planned. A child dies with the process that started it, and
so does every process the run starts (the child splits into the run and its supervisor first:
bench/run/supervisor.py)."""

from __future__ import annotations

import ctypes
import faulthandler
import gc
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from bench.core.columns import Status
from bench.core.private_files import read_own_file, replace_file
from bench.core.row import Cells, RunRow
from bench.run.supervisor import supervise

if TYPE_CHECKING:  # imported in main: torch and lightning load only after the child watches its parent
    from bench.core.config import RunConfig

OUT_OF_MEMORY = ("out of memory", "can't allocate memory")  # CUDA/MPS; CPU (DefaultCPUAllocator)


def failure_status(exc: BaseException) -> Status:
    import torch

    from bench.run.measure.quality import Diverged

    if isinstance(exc, Diverged):
        return Status.DIVERGED
    if type(exc).__name__ == "NotRun":  # bench.run.session's (imported only where a run trains)
        return Status.UNSUPPORTED
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)) or any(
            phrase in str(exc).lower() for phrase in OUT_OF_MEMORY):
        return Status.OOM
    return Status.ERROR


def precheck(config: RunConfig) -> tuple[Status, str] | None:
    """A status without training when the device is missing or cannot run the precision."""
    import torch

    from bench.run.precision import PRECISIONS

    if config.device == "cuda" and not torch.cuda.is_available():
        return Status.UNAVAILABLE, "no CUDA device on this machine"
    if config.device == "cuda" and torch.cuda.device_count() < config.num_devices:
        return Status.UNAVAILABLE, f"{config.num_devices} GPUs asked, {torch.cuda.device_count()} present"
    reason = PRECISIONS[config.precision].unsupported_reason(config.device)
    return (Status.UNSUPPORTED, reason) if reason else None


def run(config: RunConfig, sweep_dir: Path, later: list | None = None, probe_repeats: int = 0,
        devices_used: str = "") -> RunRow | None:
    """Execute one config in this process and return its row (None on DDP ranks other than 0); `probe_repeats`
    (`dnnbench check`): the harness probe (run/overhead.py) instead of training, in the row file only.
    `devices_used`: the launcher's cell for the devices it gave the run, so the run's W&B summary has it too.

    The inference backends' curve (`--infer-backends`) comes after the row's own readings (peak RSS, wall time,
    noise), so the row is the same with or without it: into `later` for the caller to run once the row is on disk,
    else here (`with_inference`).
    """
    from bench.run.environment import environment
    from bench.run.measure import best_effort
    from bench.run.measure.energy import unless_shared
    from bench.run.measure.memory import keep_freed_host_memory, peak_rss_mb, rss_now_mb
    from bench.run.measure.noise import NoiseWatch

    notes: list[str] = []  # measurements of the process that failed: their cells stay empty
    best_effort(notes, "host allocator setting", keep_freed_host_memory)
    noise = best_effort(notes, "noise check", lambda: NoiseWatch(config.device, config.num_devices).start())
    started = time.perf_counter()
    row, curve = RunRow(config), None
    try:
        row = row.add(Cells(best_effort(notes, "environment reading", lambda: environment(config.device)) or {}))
        if (outcome := precheck(config)) is not None:
            row = row.end(*outcome)
        else:
            from bench.run.session import train_and_measure

            row = row.add(Cells({"rss_after_import_mb": best_effort(notes, "RSS reading", rss_now_mb)}))
            # The same collector state on both launch paths: what the imports made (the warm server's preload, or
            # this interpreter's own imports) is never scanned again, so a forked run neither scans more objects
            # than a fresh one (the server preloads more) nor copies the server's pages by touching them.
            gc.freeze()
            if probe_repeats:
                from bench.run.overhead import probe

                row = replace(row, probe=probe(config, sweep_dir, probe_repeats))
            else:
                measured = train_and_measure(config, sweep_dir)
                if measured is None:
                    return None
                row, curve = row.add(*measured.pieces).noted(measured.message), measured.curve
    except BaseException as exc:  # noqa: BLE001 - one row whatever happens
        if isinstance(exc, KeyboardInterrupt):
            raise
        last_line = (traceback.format_exception_only(type(exc), exc)[-1]).strip()
        row = row.end(failure_status(exc), last_line[:500])
        traceback.print_exc()
    row = row.add(Cells({"peak_rss_mb": best_effort(notes, "peak RSS reading", peak_rss_mb),
                         "wall_s": time.perf_counter() - started}))
    ended = best_effort(notes, "noise check", noise.stop) if noise is not None else None
    if ended is not None:
        row = row.add(ended)
    if ended is not None and ended.noise_warning:  # the sweep's console shows it too (launch.sweep)
        print(f"dnnbench: warning: {ended.noise_warning}", file=sys.stderr)
    row = row.add(Cells(unless_shared(row.cells()))).noted(*notes)  # NVML's energy counter covers every process
    if curve is not None and later is not None:
        later.append(curve)
    return logged(with_inference(row, curve) if curve is not None and later is None else row, sweep_dir, devices_used)


def logged(row: RunRow, sweep_dir: Path, devices_used: str) -> RunRow:
    """The row with the launcher's `devices_used`, after ending the run's W&B run (if it started one) with it as the
    summary: the row as the sweep writes it (a curve run later adds only inference.csv rows)."""
    row = row.add(Cells({"devices_used": devices_used})) if devices_used else row
    if (wandb_run := sys.modules.get("bench.run.wandb_run")) is not None and wandb_run.started():
        from bench.results.drift import with_drift_from

        row = with_drift_from(row, sweep_dir / "results.csv")  # as the sweep will add it (bench/results/drift.py)
        wandb_run.finish(row, sweep_dir / "artifacts" / row.config.run_id)
    return row


def with_inference(row: RunRow, curve, save: Callable[[RunRow], None] | None = None) -> RunRow:
    """The row with its inference.csv rows (which the sweep writes there); a curve that fails is a note. `save` gets
    the row with the rows measured so far after each backend, naming those not yet measured: a run killed or
    crashed during the curve keeps its points and says which backends did not finish."""
    from bench.run.measure import best_effort

    measured: list[dict] = []

    def progress(rows: list[dict], unfinished: list[str]) -> None:
        measured[:] = rows
        if save is not None and unfinished:
            save(with_points(row, rows).noted(
                f"inference backends not finished: {', '.join(unfinished)} (the run ended during its curve)"))

    notes: list[str] = []
    rows = best_effort(notes, "inference backends", lambda: curve(progress))
    return with_points(row, measured if rows is None else rows).noted(*notes)


def with_points(row: RunRow, points: list[dict]) -> RunRow:
    """The row with its inference points, its `noise_warning` naming those timed beside other load (each point's
    own reading: the row's covered the training)."""
    row = replace(row, inference=tuple(points))
    noisy = [f"{point['backend']} bs{point['infer_batch_size']}" for point in points if point.get("noise_warning")]
    if not noisy:
        return row
    text = f"inference points timed beside other load: {', '.join(noisy)}"
    return row.add(Cells({"noise_warning": "; ".join(filter(None, [row.get("noise_warning") or "", text]))}))


def write_row(row: RunRow, result_path: Path) -> None:
    """The typed row as JSON (bench/core/row.py to_json) in the file the launcher reads back, replaced atomically:
    the sweep never reads half a row."""
    replace_file(result_path, json.dumps(row.to_json(), default=str))


def die_with_parent() -> None:
    """Never outlive the process that started this one (the sweep, the warm server, a Ray worker, DDP rank 0).

    That parent names itself in DNNBENCH_PARENT_PID; on Linux the kernel kills us when it dies (PR_SET_PDEATHSIG),
    elsewhere a thread polls getppid. Our own children (DDP ranks) watch us in turn.
    """
    expected = int(os.environ.get("DNNBENCH_PARENT_PID") or 0)
    os.environ["DNNBENCH_PARENT_PID"] = str(os.getpid())
    if not expected:
        return  # started by hand: nobody to follow
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    else:
        threading.Thread(target=poll_parent, args=(expected,), daemon=True).start()
    if os.getppid() != expected:
        os._exit(1)  # the parent died before the watch was set


def poll_parent(expected: int) -> None:
    while os.getppid() == expected:
        time.sleep(0.5)
    os.killpg(0, signal.SIGKILL)


def apply_thread_count() -> None:
    """A run forked from the warm server: OMP_NUM_THREADS was read when torch was imported there, long before this
    run's environment was set, so apply it (after the supervisor's fork: no thread pool may exist across a fork)."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0 and "torch" in sys.modules:
        import torch

        torch.set_num_threads(int(threads))


def pin_cpus() -> None:
    """Stay on the CPU cores the sweep gave this run (`--parallel`), one torch thread per core."""
    cores = os.environ.get("DNNBENCH_CPUS")
    if not cores or not hasattr(os, "sched_setaffinity"):
        return
    cpus = {int(core) for core in cores.split(",")}
    os.sched_setaffinity(0, cpus)
    if "LOCAL_RANK" not in os.environ:  # DDP ranks: Lightning divides the cores among them
        import torch

        torch.set_num_threads(len(cpus))


def main(argv: list[str] | None = None) -> int:
    die_with_parent()  # first: a fresh run has imported nothing heavy before it (a killed sweep's child would
    # otherwise live on through seconds of torch imports)
    from bench.core import progress
    from bench.core.config import RunConfig

    faulthandler.enable()  # a segfault leaves its Python stack in the run's log
    job_path = Path((argv or sys.argv[1:])[0])
    try:  # the job names what this process executes: a link, a FIFO or another user's file is refused
        job = json.loads(read_own_file(job_path))
    except (OSError, ValueError) as exc:
        print(f"dnnbench: job file refused: {exc}", file=sys.stderr)
        return 2
    if "LOCAL_RANK" not in os.environ and supervise(job_path.parent / "tmp"):  # DDP ranks are in rank 0's tree
        die_with_parent()  # the run's parent is now its supervisor (bench/run/supervisor.py)
    apply_thread_count()
    if int(os.environ.get("LOCAL_RANK", "0")) == 0 and job.get("progress_path"):
        progress.write(Path(job["progress_path"]), pid=os.getpid(), stage="setup")
    pin_cpus()
    sys.path[:0] = [p for p in job["sys_path"] if p not in sys.path]  # the sweep's imports resolve here too
    config = RunConfig(**job["config"])
    later: list = []
    row = run(config, Path(job["sweep_dir"]), later, job.get("probe_repeats") or 0, job.get("devices_used") or "")
    if row is not None and int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0:
        write_row(row, Path(job["result_path"]))  # on disk before the curve: a crash or a kill there keeps the row
        for curve in later:
            write_row(with_inference(row, curve, lambda partial: write_row(partial, Path(job["result_path"]))),
                      Path(job["result_path"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
