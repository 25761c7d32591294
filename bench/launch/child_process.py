"""Launching (step: one config -> one child process with a time limit -> its row, or a fallback row).

A child is forked from the warm server (bench/launch/warm_client.py: torch and lightning already imported, CUDA never
touched), or started as a fresh interpreter (bench/launch/start.py) where forking is unavailable and for
multi-process (DDP) runs, whose ranks Lightning starts as fresh interpreters anyway. Either way it is its own session
with a time limit, its process tree (every process the run started, in any session: bench/run/supervisor.py) and
group are killed at that limit, and it yields exactly one row.

The child runs in the sweep's own environment: the same working directory and environment variables, and the
parent's `sys.path` handed over in the job file (in a private folder of its own), so a model given by import path
from the user's folder resolves in the child too. `pin` narrows what it may use: GPUs through CUDA_VISIBLE_DEVICES,
CPU cores through affinity.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.core import progress
from bench.core.columns import Status
from bench.core.config import RunConfig
from bench.core.private_files import create_new, open_own_file
from bench.core.row import Cells, RunRow
from bench.launch.warm_client import START_SCRIPT, warm_server


@dataclass(frozen=True)
class Pin:
    """The devices one run may use: GPU ids for CUDA_VISIBLE_DEVICES and CPU cores; None = not narrowed."""

    gpus: tuple[str, ...] | None = None
    cpus: tuple[int, ...] | None = None

    def env(self) -> dict[str, str]:
        env = {}
        if self.gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus)
        if self.cpus is not None:
            env["DNNBENCH_CPUS"] = ",".join(map(str, self.cpus))
        return env


def core_ranges(cores: list[int]) -> str:
    """[0, 1, 2, 3, 8] -> '0-3,8'."""
    spans: list[list[int]] = []
    for core in sorted(cores):
        if spans and core == spans[-1][1] + 1:
            spans[-1][1] = core
        else:
            spans.append([core, core])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in spans)


def devices_used(config: RunConfig, pin: Pin | None) -> str:
    """What the run could use: `cuda:<GPU ids>` (as the sweep's CUDA_VISIBLE_DEVICES names them), `cpu:<cores>`."""
    pin = pin or Pin()
    parts = []
    if config.device == "cuda":
        visible = pin.gpus if pin.gpus is not None else visible_gpus(config.num_devices)
        parts.append("cuda:" + ",".join(visible[: config.num_devices]))
    cores = pin.cpus if pin.cpus is not None else (usable_cores() if config.device == "cpu" else None)
    if cores:
        parts.append("cpu:" + core_ranges(list(cores)))
    return " ".join(parts)


def usable_cores() -> list[int]:
    """The CPU cores this process may run on (its affinity where the OS has one): what runs are given and share."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def visible_gpus(count: int | None = None) -> tuple[str, ...]:
    """GPU ids this process may hand out: CUDA_VISIBLE_DEVICES's entries, else 0..count-1 (torch's count if None)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return tuple(entry.strip() for entry in listed.split(",") if entry.strip())
    if count is None:
        import torch

        count = torch.cuda.device_count()
    return tuple(str(index) for index in range(count))


def job_paths(config: RunConfig, sweep_dir: Path) -> dict[str, Path]:
    """The run's files in the sweep folder (checked private by bench.launch.sweep.open_sweep_folder)."""
    runs = sweep_dir / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    return {"result": runs / f"{config.run_id}.json", "log": runs / f"{config.run_id}.log",
            "progress": progress.path_for(sweep_dir, config.run_id)}


def write_job(job: dict[str, Any], runs: Path) -> Path:
    """The job file the child reads, in a fresh private folder under `runs/` (mode 0700, a random name): the child
    executes what it names (`sys_path`, the model), so no other user may plant, swap or read it. The caller removes
    the folder (one left by a killed sweep stays in its own sweep folder, not in /tmp)."""
    path = Path(tempfile.mkdtemp(dir=runs, prefix=".job-")) / "job.json"
    with os.fdopen(create_new(path), "w") as handle:
        json.dump(job, handle)
    return path


def fallback_row(config: RunConfig, status: Status, message: str, wall_s: float | None) -> RunRow:
    """The row of a run whose child wrote none (killed at its time limit, crashed, lost): when it started is not
    known here, where it ran is."""
    return RunRow(config, status, message, started_at="").add(Cells({"wall_s": wall_s, "hostname": platform.node()}))


def last_log_line(log_path: Path) -> str:
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:400] if lines else ""


def exit_reason(code: int | None) -> str:
    if code is None:
        return "run process lost: the warm server it was forked from died (it is restarted for the next run)"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        oom = " (the kernel's out-of-memory killer, or a kill)" if -code == signal.SIGKILL else ""
        return f"run process killed by {name}{oom}"
    return f"run process exited with code {code}"


# ----------------------------------------------------------------------------------------------- live children
_running: set[int] = set()
_running_lock = threading.Lock()
stopping = threading.Event()  # set by kill_running: no new child starts, one that just started is killed


def kill_group(pid: int) -> None:
    """Kill a run: every process of its tree first (its supervisor, bench/run/supervisor.py, keeps the orphans, a
    daemon in another session included, as its descendants while it lives), then its process group."""
    from bench.run.supervisor import kill_tree

    kill_tree(pid)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # not yet its own group leader, or already gone
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_running() -> None:
    """Kill every running child's process group, and start no more (the sweep is being stopped)."""
    with _running_lock:
        stopping.set()
        for pid in list(_running):
            kill_group(pid)


def start_child(config: RunConfig, paths: dict[str, Path], env: dict[str, str], fresh: bool):
    """Fork it from the warm server, else start a fresh interpreter; either has `.pid` and `.wait(timeout)`."""
    os.close(create_new(paths["log"], 0o644))  # a link planted at the log's name is removed, not written through
    if not fresh and config.world_size == 1:
        for _ in range(2):  # a server found dead on the way is started again once
            server = warm_server(config.repeat)
            if server is None:
                break
            if (child := server.spawn(paths["job"], paths["log"], env)) is not None:
                return child
    if stopping.is_set():  # e.g. the server was stopped with the sweep while this request waited on it
        raise OSError("the sweep is being stopped")
    with os.fdopen(open_own_file(paths["log"], os.O_WRONLY | os.O_APPEND), "a") as log:
        # A new session, so a timeout kills the whole process group (DDP ranks included).
        return subprocess.Popen([sys.executable, START_SCRIPT, "run", str(paths["job"])], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=env | {"DNNBENCH_PARENT_PID": str(os.getpid())})


KILL_GRACE_S = 5.0  # after the kill at the time limit, how long its exit may take to be reported


def wait_or_kill(child, time_limit_s: float) -> tuple[int | None, bool]:
    """(exit code, timed out): the child's process group is killed at the time limit, and the wait ends at most
    KILL_GRACE_S later whatever the child or its warm server does (None: its exit was never reported)."""
    with _running_lock:
        _running.add(child.pid)
        if stopping.is_set():  # started while the sweep was being stopped
            kill_group(child.pid)
    try:
        try:  # threading refuses timeouts past TIMEOUT_MAX (~292 years): a longer limit is no limit
            return child.wait(timeout=min(time_limit_s, threading.TIMEOUT_MAX)), False
        except subprocess.TimeoutExpired:
            kill_group(child.pid)
            try:
                return child.wait(timeout=KILL_GRACE_S), True
            except subprocess.TimeoutExpired:
                return None, True
    finally:
        with _running_lock:
            _running.discard(child.pid)


def run_child(config: RunConfig, sweep_dir: Path, pin: Pin | None = None, fresh: bool = False,
              probe_repeats: int = 0) -> RunRow:
    """Run one config in its own process; kill it at the time limit; return its row, or a fallback row.

    `fresh`: start a fresh interpreter rather than forking from the warm server. `probe_repeats`: the child runs
    `dnnbench check`'s harness probe (bench/run/overhead.py) instead of training.
    """
    started = time.perf_counter()
    # An OSError here (a full disk, an unusable folder) stops the sweep with one line; resume re-runs the config.
    sweep_dir = Path(sweep_dir).resolve()
    paths, used = job_paths(config, sweep_dir), devices_used(config, pin)
    job = write_job({"config": config.to_dict(), "sweep_dir": str(sweep_dir), "result_path": str(paths["result"]),
                     "progress_path": str(paths["progress"]), "sys_path": [os.path.abspath(p or ".") for p in sys.path],
                     "probe_repeats": probe_repeats, "devices_used": used}, paths["result"].parent)
    paths["result"].unlink(missing_ok=True)
    try:
        child = start_child(config, paths | {"job": job}, dict(os.environ) | (pin or Pin()).env(), fresh)
        code, timed_out = wait_or_kill(child, config.time_limit_s)
    finally:
        shutil.rmtree(job.parent, ignore_errors=True)
    if paths["result"].exists():  # written once its row was measured; a run that ended after that says how
        row = RunRow.from_json(json.loads(paths["result"].read_text()))
        if timed_out:
            row = unmeasured_points(row.noted(f"killed at its {config.time_limit_s:g} s time limit after its row "
                                              "was measured"))
        elif code != 0:
            row = row.noted(f"{exit_reason(code)} after its row was measured")
    elif timed_out:
        row = fallback_row(config, Status.TIMEOUT, f"killed after the {config.time_limit_s:g} s time limit",
                           time.perf_counter() - started)
    else:
        last = last_log_line(paths["log"])
        row = fallback_row(config, Status.ERROR, exit_reason(code) + (f": {last}" if last else ""),
                           time.perf_counter() - started)
    return row.add(Cells({"devices_used": used}))


def unmeasured_points(row: RunRow) -> RunRow:
    """A run killed at its time limit during its inference curve: the points it did not measure, as `timeout` points
    (as a curve that stops at the limit itself writes them), so that inference.csv says the limit cut the curve and
    `--resume` does not take them for points an interruption lost (bench/launch/resume.py)."""
    config = row.config
    if not config.wants_curve:
        return row
    sizes = config.infer_batch_sizes.split(",") if config.infer_batch_sizes else [str(row.get("batch_size"))]
    measured = {(point["backend"], str(int(point["infer_batch_size"]))) for point in row.inference}
    first = row.inference[0] if row.inference else {}
    head = config.point_head(first.get("metric_name", ""), first.get("metric_direction", ""))
    cut = [head | {"backend": backend, "infer_batch_size": int(size), "status": Status.TIMEOUT,
                   "message": f"not measured: the run was killed at its {config.time_limit_s:g} s time limit"}
           for backend in config.infer_backends.split(",") for size in sizes if (backend, size) not in measured]
    return replace(row, inference=row.inference + tuple(cut))


def share_wandb_service(configs: list[RunConfig]) -> None:
    """Start W&B's service process once for the sweep: each run connects to it (WANDB_SERVICE in the environment
    the children get) instead of starting its own, which is most of W&B's per-run start-up."""
    if all(c.wandb == "disabled" for c in configs) or os.environ.get("WANDB_SERVICE"):
        return
    os.environ.setdefault("WANDB_SILENT", "true")  # set before setup: its settings are read once
    try:
        import wandb

        wandb.setup()
    except Exception as exc:  # W&B never costs a run: each child then starts its own service
        print(f"dnnbench: warning: W&B service not shared ({str(exc).splitlines()[0] if str(exc) else exc!r})",
              file=sys.stderr)


def devices_here() -> list[str]:
    """The devices runs can be launched on from this machine."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda" if torch.cuda.device_count() == 1 else f"cuda ({torch.cuda.device_count()} GPUs)")
    return found
