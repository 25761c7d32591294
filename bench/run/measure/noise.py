"""Noise: what else ran on the machine during a run (load at its start, other CPU use, foreign GPU processes).

As optimum-benchmark's device isolation does, a benchmark notices when it shared its device: the row records it
and says so in `noise_warning`, which the console and the report show (and compare, when either side has one).

Other CPU use is the machine's own accounting, so nothing escapes it (short-lived processes, another sweep's runs
and warm servers, kernel threads, a hypervisor's steal): the CPU time the run's cores spent busy (/proc/stat)
minus what the run's own process tree used (this process's threads, its live descendants, and every descendant
that exited meanwhile) and what its harness used (the sweep and the warm server that launched it and the sweep's
W&B service, their own threads only: a sibling run of `--parallel` is other load). A light thread samples both
every second (the busiest second; a wake-up seconds late: the run itself was stopped or starved); the load average
at the start, per core, says whether the machine was loaded. Snapshots of the processes alive at the start and the
end, which this replaced, missed every process not alive at both (another sweep's runs, test runners, CI jobs).
"""

from __future__ import annotations

import glob
import os
import threading
import time
from dataclasses import dataclass

from bench.core.row import Columns
from bench.run.measure.gpu_processes import foreign_gpu_count, gpu_indices, gpu_process_pids
from bench.run.supervisor import SUPERVISOR_ENV

BUSY_CORES = 0.2  # a process that used this many cores on average counts as busy
SHARED_CORES = 0.5  # others together using this many cores (or 10% of the cores watched, if more) make a run noisy
LOADED_PER_CORE = 1.5  # a load average above this per core at the start makes a run noisy: one sweep alone, its
# torch threads one per core, keeps the load near 1 per core; a second busy sweep doubles it
SAMPLE_S = 1.0  # the sampling thread's period: one /proc/stat read and a few /proc/<pid>/stat reads each time
PEAK_MIN_S = 0.5  # the shortest sampled interval that counts for the peak
# Others over the sharing level for part of a run make it noisy too, when that part is at least this share of the
# run and this many seconds: a second sweep that ended a third of the way into a long run averages below the level
# (ResNet-18 224 beside a 93 s cnn/lstm/mlp sweep: 0.39 cores over its 255 s, 1.06 while the sweep ran) yet slowed
# every step it overlapped; a one-second blip (a shell command) stays below both.
SHARED_SHARE, SHARED_MIN_S = 0.1, 3.0
PAUSED_MIN_S = 2.0  # the sampling thread (which gets the GIL within 5 ms) woke this much late: the run's process did
# not run meanwhile: stopped (SIGSTOP, a suspended job, a debugger) or starved of CPU
SHOWN_PROCESSES = 3

Snapshot = dict[int, tuple[float, str, float]]  # pid -> (create time, name, CPU seconds so far)


@dataclass(frozen=True)
class Noise(Columns):
    load_avg_start: float | None = None
    load_avg_end: float | None = None
    load_per_core_start: float | None = None
    other_cpu_cores: float | None = None
    other_cpu_cores_peak: float | None = None
    busy_processes: str = ""
    foreign_gpu_processes: int | None = None
    noise_warning: str = ""


def busy_cpu_seconds(cpus: list[int] | None) -> float:
    """CPU seconds the machine's logical CPUs (or those in `cpus`) have spent busy since boot, whoever ran there:
    all but idle and iowait (guest time is inside user time already; steal is another guest using the core)."""
    import psutil

    per_cpu = psutil.cpu_times(percpu=True)
    chosen = per_cpu if cpus is None else [per_cpu[i] for i in cpus if i < len(per_cpu)]
    fields = ("user", "nice", "system", "irq", "softirq", "steal")
    return sum(getattr(times, name, 0.0) for times in chosen for name in fields)


def watched_cpus() -> list[int] | None:
    """The CPUs this run may use (its affinity: `--parallel` pins runs to disjoint cores); None for all of them."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return None if len(cpus) >= (os.cpu_count() or 1) else cpus


def descendants(pid: int) -> list[int]:
    """Live descendants of a process, from the kernel's per-thread children lists (no scan of every process);
    psutil's scan where the kernel keeps no such lists."""
    if not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"):
        import psutil

        return [process.pid for process in psutil.Process(pid).children(recursive=True)]
    children = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(path) as listing:
                children += [int(child) for child in listing.read().split()]
        except OSError:
            pass  # the thread (or the process) ended meanwhile
    return children + [grandchild for child in children for grandchild in descendants(child)]


def process_cpu_s(pid: int, with_children: bool) -> float:
    """CPU seconds a process used so far (all its threads; with the children it reaped, if asked); 0 once gone."""
    import psutil

    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system + (times.children_user + times.children_system if with_children else 0.0)


def harness_pids() -> list[int]:
    """The processes that launched this run and serve it: its parent; when that is the warm server, the sweep that
    started it; the sweep's W&B service, which the run's logging keeps busy (bench.launch.child_process shares it)."""
    import psutil

    chain = [process for process in [psutil.Process().parent()] if process is not None]
    try:
        if chain and str(chain[0].pid) == os.environ.get(SUPERVISOR_ENV):  # the run's supervisor, then its launcher
            chain += [process for process in [chain[0].parent()] if process is not None]
        if chain and "warm-server" in chain[-1].cmdline():  # its command: python .../bench/launch/start.py warm-server
            chain += [process for process in [chain[-1].parent()] if process is not None]
        if chain:
            chain += [child for child in chain[-1].children()
                      if any("wandb" in part for part in child.cmdline()[:2])]
    except psutil.Error:
        pass
    return [process.pid for process in chain]


class OwnClock:
    """CPU seconds used so far by the run's own process tree and its harness (see the module docstring). A descendant
    reaped here moves from the live sum into this process's children times; one that vanished without being reaped
    here (reparented to init) would drop out, so the clock never goes back: a drop between two readings is kept."""

    def __init__(self) -> None:
        self.harness = harness_pids()
        self.last = 0.0
        self.vanished = 0.0

    def read(self) -> float:
        mine = os.times()
        total = mine.user + mine.system + mine.children_user + mine.children_system
        total += sum(process_cpu_s(pid, True) for pid in run_tree())
        total += sum(process_cpu_s(pid, False) for pid in self.harness)
        self.vanished += max(0.0, self.last - total - self.vanished)
        self.last = total + self.vanished
        return self.last


def other_cores(busy_s: float, ours_s: float, seconds: float) -> float:
    """Cores used by others on average: the watched cores' busy time beyond ours, per second."""
    return max(0.0, busy_s - ours_s) / max(seconds, 1e-9)


def cpu_snapshot() -> Snapshot:
    """CPU seconds used so far by every process this process can see (for naming the busy ones)."""
    import psutil

    snapshot = {}
    for process in psutil.process_iter(["create_time", "name", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is not None:
            snapshot[process.pid] = (process.info["create_time"] or 0.0, process.info["name"] or "?",
                                     times.user + times.system)
    return snapshot


def own_pids() -> set[int]:
    """This process, its ancestors (the sweep) and its descendants (DDP ranks, compile workers, W&B service)."""
    import psutil

    return {os.getpid(), *(process.pid for process in psutil.Process().parents()), *run_tree()}


def run_tree() -> list[int]:
    """The run's processes but this one: its descendants, and those its supervisor adopted (bench/run/supervisor.py)."""
    mine, supervisor = descendants(os.getpid()), int(os.environ.get(SUPERVISOR_ENV) or 0)
    return mine + [pid for pid in (descendants(supervisor) if supervisor else []) if pid not in (os.getpid(), *mine)]


def other_process_cores(start: Snapshot, end: Snapshot, ours: set[int], seconds: float) -> dict[str, float]:
    """Average cores each process outside `ours` alive at the end used between two snapshots, as
    {"name (pid)": cores}: names for the warning, not the measure (a process gone by the end is not listed).

    A process that started in between counts all its CPU time; a reused pid (other create time) is a new process.
    """
    used = {}
    for pid, (created, name, cpu_s) in end.items():
        if pid in ours:
            continue
        before = start.get(pid)
        spent = cpu_s - before[2] if before and before[0] == created else cpu_s
        if spent > 0:
            used[f"{name} ({pid})"] = spent / max(seconds, 1e-9)
    return used


def shared_level(cpu_count: int) -> float:
    """Other processes' cores from which a run counts as sharing the machine."""
    return max(SHARED_CORES, 0.1 * cpu_count)


def warning(other_cores: float, busy: dict[str, float], foreign_gpu: int | None, cpu_count: int,
            load_per_core: float | None = None, shared_s: float = 0.0, run_s: float = 0.0,
            paused_s: float = 0.0) -> str:
    """The noise warning of a run, empty when it ran alone; `cpu_count`: the cores watched; `shared_s`: the sampled
    seconds in which others used at least the sharing level, of the `run_s` watched; `paused_s`: not run at all."""
    parts = []
    if load_per_core is not None and load_per_core >= LOADED_PER_CORE:
        parts.append(f"the machine was loaded when it started (load average {load_per_core:.1f} per core)")
    shown = ", ".join(f"{name} {cores:.1f}" for name, cores in list(busy.items())[:SHOWN_PROCESSES])
    shown = f" ({shown})" if shown else ""
    if other_cores >= shared_level(cpu_count):
        parts.append(f"other processes used {other_cores:.1f} of {cpu_count} CPU cores" + shown)
    elif shared_s >= max(SHARED_MIN_S, SHARED_SHARE * run_s):
        parts.append(f"other processes used {shared_level(cpu_count):.1f} or more of {cpu_count} CPU cores for "
                     f"{shared_s:.0f} s of its {run_s:.0f} s" + shown)
    if foreign_gpu:
        parts.append(f"{foreign_gpu} other process(es) on its GPU")
    if paused_s >= PAUSED_MIN_S:
        parts.append(f"the run did not run for {paused_s:.0f} s of its {run_s:.0f} s (stopped, or starved of CPU)")
    return "shared device: " + "; ".join(parts) if parts else ""


class NoiseWatch:
    """Start before a run, stop after it: what else used the machine in between, sampled every SAMPLE_S by a
    daemon thread. Never raises: a noise check that fails leaves its columns empty rather than cost the row."""

    def __init__(self, device: str = "cpu", num_devices: int = 1, sample_s: float = SAMPLE_S) -> None:
        self.using_gpu = device == "cuda"
        self.num_devices = num_devices
        self.sample_s = sample_s
        self.cpu_start: Snapshot | None = None
        self.peak = 0.0  # the busiest sampled interval's other cores
        self.shared_s, self.paused_s = 0.0, 0.0  # seconds others used the sharing level or more; the run did not run
        self._stopped, self._lock, self.sampling = threading.Event(), threading.Lock(), False  # lock: thread, stop()

    def start(self) -> NoiseWatch:
        try:
            self.indices = gpu_indices(self.num_devices) if self.using_gpu else []
            self.load_start = os.getloadavg()[0]
            self.cpus = watched_cpus()
            self.cores = len(self.cpus) if self.cpus else (os.cpu_count() or 1)
            self.own = OwnClock()
            self.first = self.previous = self.sample()
            self.gpu_start = foreign_gpu_count(gpu_process_pids(self.indices), own_pids(), False) \
                if self.using_gpu else None
            self.cpu_start, self.sampling = cpu_snapshot(), True  # the thread samples every sample_s until stopped
            threading.Thread(target=self.sample_until_stopped, name="dnnbench-noise", daemon=True).start()
        except Exception:
            self.cpu_start = None
        return self

    def sample(self) -> tuple[float, float, float]:
        """(monotonic time, busy CPU seconds of the watched cores, our CPU seconds), read together."""
        return time.monotonic(), busy_cpu_seconds(self.cpus), self.own.read()

    def advance(self) -> tuple[float, float, float]:
        """Take a sample and fold the interval since the previous one into the peak and the paused seconds."""
        with self._lock:
            now = self.sample()
            seconds = now[0] - self.previous[0]
            late = seconds - self.sample_s if self.sampling else 0.0  # past when the thread was due to sample
            self.paused_s += late if late >= PAUSED_MIN_S else 0.0
            if seconds >= PEAK_MIN_S:  # a shorter (tail) interval says little about a peak
                others = other_cores(now[1] - self.previous[1], now[2] - self.previous[2], seconds)
                self.peak = max(self.peak, others)
                self.shared_s += seconds if others >= shared_level(self.cores) else 0.0
            self.previous = now
            return now

    def sample_until_stopped(self) -> None:
        while self.sampling and not self._stopped.wait(self.sample_s):
            try:
                self.advance()
            except Exception:
                self.sampling = False  # the end-to-end figure still comes from stop()

    def stop(self) -> Noise:
        self._stopped.set()
        if self.cpu_start is None:
            return Noise()
        try:
            return self.measure()
        except Exception:
            return Noise()

    def measure(self) -> Noise:
        end = self.advance()
        seconds = end[0] - self.first[0]
        other = other_cores(end[1] - self.first[1], end[2] - self.first[2], seconds)
        ours = own_pids()
        cores = other_process_cores(self.cpu_start or {}, cpu_snapshot(), ours, seconds)
        busy = dict(sorted(((n, c) for n, c in cores.items() if c >= BUSY_CORES), key=lambda item: -item[1]))
        foreign = None
        if self.using_gpu:
            at_end = foreign_gpu_count(gpu_process_pids(self.indices), ours, True)
            foreign = max((n for n in (self.gpu_start, at_end) if n is not None), default=None)
        load_per_core = self.load_start / (os.cpu_count() or 1)
        return Noise(load_avg_start=self.load_start, load_avg_end=os.getloadavg()[0], load_per_core_start=load_per_core,
                     other_cpu_cores=other, other_cpu_cores_peak=max(self.peak, other),
                     busy_processes=", ".join(f"{name} {c:.2f}" for name, c in list(busy.items())[:SHOWN_PROCESSES]),
                     foreign_gpu_processes=foreign,
                     noise_warning=warning(other, busy, foreign, self.cores, load_per_core, self.shared_s, seconds,
                                                  self.paused_s))

