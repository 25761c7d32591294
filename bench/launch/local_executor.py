"""Running a sweep on this machine (step: the sweep's configs -> up to `--parallel` children at once -> rows).

Serial by default: one run at a time, seeing the whole machine, as a timing wants. `--parallel N` splits the
machine into N slots, each a disjoint set of CPU cores and (slot i < number of GPUs) GPU i: a run takes as many
slots as it has devices (a `cuda:4` DDP run takes four GPU slots) and sees only theirs, through
CUDA_VISIBLE_DEVICES and its CPU affinity. `--parallel auto` is one slot per GPU; there a CPU run takes every slot
(it runs alone with all cores: CPU timings would contend) while GPU runs fill the GPUs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from bench.core import progress
from bench.core.config import RunConfig
from bench.core.row import RunRow
from bench.launch import child_process as launch
from bench.launch.warm_client import stop_warm_server, warm_server

TICK_S = 0.5  # how often the sweep loop wakes between finished runs (console, Ctrl-C / SIGTERM)


@dataclass(frozen=True)
class Slot:
    cpus: tuple[int, ...] | None  # None: not narrowed (serial)
    gpu: str | None


def split_cores(cores: list[int], parts: int) -> list[tuple[int, ...]]:
    """Contiguous, disjoint core sets; with more parts than cores, parts share cores round-robin."""
    if parts > len(cores):
        return [(cores[i % len(cores)],) for i in range(parts)]
    size, extra = divmod(len(cores), parts)
    sets, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        sets.append(tuple(cores[start:end]))
        start = end
    return sets


def machine_slots(parallel: int | None, configs: list[RunConfig]) -> list[Slot]:
    """`parallel` slots (None = auto: one per GPU); one unnarrowed slot when serial."""
    wants_gpus = any(c.device == "cuda" for c in configs)
    gpus = launch.visible_gpus() if wants_gpus and parallel != 1 else ()
    count = max(1, len(gpus)) if parallel is None else parallel
    if count == 1:
        return [Slot(None, None)]
    cores = launch.usable_cores()
    if count > len(cores):
        print(f"dnnbench: warning: --parallel {count} on {len(cores)} CPU cores: runs share cores", file=sys.stderr)
    return [Slot(cpus, gpus[i] if i < len(gpus) else None) for i, cpus in enumerate(split_cores(cores, count))]


class Slots:
    """Which slots are free, and the slots (and so the devices) each starting run gets."""

    def __init__(self, slots: list[Slot], auto: bool):
        self.all, self.free, self.auto = slots, list(slots), auto

    def claim(self, config: RunConfig) -> list[Slot] | None:
        if len(self.all) == 1:
            eligible, need = self.all, 1
        elif config.device == "cuda":
            eligible = [s for s in self.all if s.gpu is not None] or self.all  # none: it reports `unavailable`
            need = min(config.num_devices, len(eligible)) if eligible[0].gpu is not None else 1
        else:  # CPU runs leave the GPU slots to GPU runs where they can
            eligible = sorted(self.all, key=lambda s: s.gpu is not None)
            need = len(self.all) if self.auto else min(config.num_devices, len(self.all))
        free = [s for s in eligible if s in self.free][:need]
        if len(free) < need:
            return None
        for slot in free:
            self.free.remove(slot)
        return free

    def release(self, claimed: list[Slot]) -> None:
        self.free.extend(claimed)

    @staticmethod
    def pin(config: RunConfig, claimed: list[Slot]) -> launch.Pin:
        if claimed[0].cpus is None:
            return launch.Pin()  # serial: the whole machine, as in a run by hand
        cpus = tuple(sorted({core for slot in claimed for core in slot.cpus or ()}))
        gpus = tuple(s.gpu for s in claimed if s.gpu is not None) if config.device == "cuda" else ()
        return launch.Pin(gpus=gpus, cpus=cpus)


class LocalExecutor:
    """Runs configs as children of this process, up to one per free slot; the caller writes every row."""

    def __init__(self, parallel: int | None, configs: list[RunConfig]):
        self.slots = Slots(machine_slots(parallel, configs), auto=parallel is None)
        self.pool = ThreadPoolExecutor(max_workers=len(self.slots.all), thread_name_prefix="dnnbench-run")
        self.futures: dict[Future, tuple[RunConfig, list[Slot], launch.Pin]] = {}
        self.sweep_dir = Path(".")
        launch.stopping.clear()  # a sweep stopped earlier in this process does not stop this one
        launch.share_wandb_service(configs)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if self.futures:  # stopped early (a signal, an error): no child outlives the sweep
            launch.kill_running()
            stop_warm_server()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def running(self) -> list[tuple[RunConfig, str, Path]]:
        return [(config, launch.devices_used(config, pin), progress.path_for(self.sweep_dir, config.run_id))
                for config, _, pin in self.futures.values()]

    def start_what_fits(self, queue) -> None:
        while (config := queue.next_ready()) is not None and (claimed := self.slots.claim(config)) is not None:
            queue.start(config)
            warm_server(config.repeat)  # (re)started here, in the main thread, before a run needs it
            pin = Slots.pin(config, claimed)
            future = self.pool.submit(launch.run_child, config, self.sweep_dir, pin)
            self.futures[future] = (config, claimed, pin)

    def run(self, queue, sweep_dir: Path) -> Iterator[tuple[RunConfig, RunRow] | None]:
        """Yields (config, row) as runs finish, and None every TICK_S while runs are in flight."""
        self.sweep_dir = Path(sweep_dir)
        (self.sweep_dir / "runs").mkdir(parents=True, exist_ok=True)
        while queue:
            self.start_what_fits(queue)
            if not self.futures:
                time.sleep(TICK_S)  # nothing fits and nothing runs: cannot happen, but never spin
                continue
            finished, _ = wait(self.futures, timeout=TICK_S, return_when=FIRST_COMPLETED)
            if not finished:
                yield None
            for future in finished:
                config, claimed, _ = self.futures.pop(future)
                self.slots.release(claimed)
                queue.finish(config)
                yield config, future.result()  # an OSError (a full disk) ends the sweep in one line
