"""Running a sweep on a Ray cluster (step: the sweep's configs -> one Ray task per config -> rows back to the driver).

`--executor ray [--ray-address ADDR]`: each config is a Ray task asking for the run's GPUs (`num_gpus`) and CPUs. The
task runs the config exactly as a local sweep does (bench.launch.child_process.run_child): in a fresh process of its
own, forked from the warm server the worker keeps (so a worker pays the imports once, not each run), with the time
limit, the process-group kill and one row. Rows stream back to the driver, which alone writes the CSV, so resume and the
one-row guarantee are the local ones. A worker that dies (killed, OOM, node lost) is a row with status `error`, never a
retry (`max_retries=0`); its run dies with it. Ray sets CUDA_VISIBLE_DEVICES for each task, so the row's `devices_used`
names the GPUs on the node its `hostname` names.

Multi-node DDP inside one run stays Lightning's (`--num-nodes`); Ray places whole runs.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.core import progress
from bench.core.columns import Status
from bench.core.config import RunConfig
from bench.core.errors import SweepError
from bench.core.row import RunRow
from bench.launch import child_process as launch

TICK_S = 0.5


def run_on_worker(config: dict[str, Any], sweep_dir: str, cwd: str, sys_path: list[str]) -> RunRow:
    """The Ray task: one config in a child process; its log and artifacts stay in this node's sweep_dir."""
    if os.path.isdir(cwd):
        os.chdir(cwd)  # the driver's folder, where this node has it: a model given by import path resolves
    sys.path[:0] = [p for p in sys_path if p not in sys.path and os.path.isdir(p)]
    return launch.run_child(RunConfig(**config), Path(sweep_dir))


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # what a gRPC client says first (Ray's GCS and Client speak gRPC)
SETTINGS_FRAME = 4  # the frame type a gRPC server answers it with


def probe(address: str | None) -> None:
    """A `host:port` or `ray://host:port` address is tried first (5 s each to connect and to answer): ray.init
    waits on a wrong one for minutes, printing a warning every few seconds, also when something else listens."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        connection = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
    except (OSError, ValueError) as exc:
        raise SweepError(f"no Ray cluster at {address} ({exc}); no run started") from None
    with connection:
        try:
            connection.sendall(HTTP2_PREFACE)
            answer = connection.recv(9)  # a frame header: 3 bytes length, 1 byte type
        except OSError:  # silent past the timeout, or hung up
            answer = b""
    if len(answer) < 4 or answer[3] != SETTINGS_FRAME:
        raise SweepError(f"no Ray cluster at {address} (something listens there, but it does not answer as a "
                         "Ray head or Ray Client server); no run started")


def user_paths() -> list[str]:
    """The driver's import paths outside its Python installation (the user's folder): workers prepend them."""
    installed = tuple(os.path.realpath(p) for p in {sys.prefix, sys.base_prefix})
    paths = [os.path.realpath(p or ".") for p in sys.path]
    return [p for p in paths if not p.startswith(installed)]


class RayExecutor:
    """Submits each ready config as a Ray task and yields rows as they come back; the caller writes every row."""

    def __init__(self, address: str | None):
        self.address = address
        self.refs: dict[Any, RunConfig] = {}
        self.sweep_dir = Path(".")
        self.started_here = False

    def __enter__(self) -> RayExecutor:
        import ray

        probe(self.address)
        if not ray.is_initialized():  # connects to ADDR (or RAY_ADDRESS), else starts a local instance
            try:
                ray.init(address=self.address, include_dashboard=False, logging_level="ERROR",  # type: ignore[arg-type]
                         log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:  # an address Ray cannot use, a failed start
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise SweepError(f"could not start or reach Ray at {self.address or 'auto'} ({reason[:200]}); "
                                 "no run started") from None
            self.started_here = True
        self.remote = ray.remote(max_retries=0)(run_on_worker)  # a lost worker is a row, not a rerun
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        self.max_gpus = max((int(resources.get("GPU", 0)) for resources in nodes), default=0)
        self.node_cpus = min((int(resources.get("CPU", 1)) for resources in nodes), default=1)
        return self

    def __exit__(self, *exc_info) -> None:
        import ray

        for ref in self.refs:  # stopped early: kill the workers (their children die with them)
            ray.cancel(ref, force=True)
        if self.started_here:
            ray.shutdown()

    def resources(self, config: RunConfig) -> dict[str, Any]:
        """A GPU run asks for its GPUs on one node (none when no node has that many: it reports `unavailable`) and
        a CPU; a CPU run asks for a whole node's CPUs (the smallest node's count), so CPU timings never share
        cores, as a local sweep's serial CPU runs do not."""
        if config.device == "cuda":
            return {"num_gpus": config.num_devices if config.num_devices <= self.max_gpus else 0, "num_cpus": 1}
        return {"num_gpus": 0, "num_cpus": self.node_cpus}

    def running(self) -> list[tuple[RunConfig, str, Path]]:
        return [(config, "ray", progress.path_for(self.sweep_dir, config.run_id)) for config in self.refs.values()]

    def row(self, ref, config: RunConfig) -> RunRow:
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return launch.fallback_row(config, Status.ERROR, f"Ray task failed ({type(exc).__name__}): {first}",
                                       None)

    def run(self, queue, sweep_dir: Path) -> Iterator[tuple[RunConfig, RunRow] | None]:
        """Yields (config, row) as tasks finish, and None every TICK_S while tasks are in flight."""
        import ray

        self.sweep_dir = Path(sweep_dir)
        while queue:
            while (config := queue.next_ready()) is not None:  # Ray queues them by their resources
                queue.start(config)
                ref = self.remote.options(**self.resources(config)).remote(
                    config.to_dict(), str(self.sweep_dir), os.getcwd(), user_paths())
                self.refs[ref] = config
            finished, _ = ray.wait(list(self.refs), num_returns=1, timeout=TICK_S)
            if not finished:
                yield None
            for ref in finished:
                config = self.refs.pop(ref)
                queue.finish(config)
                yield config, self.row(ref, config)
