"""The inference curve (step: the trained module -> one inference.csv row per backend x batch size: its latency and
throughput, timed as the row's inference is, and the model's test metric through the backend with its drift from
eager).

Each backend (bench/run/measure/backends.py) stands in for the model's network (`net`; models without one are timed as
a whole and their quality is not measured through the backend), so the model's own forward and test code run
through it unchanged. A backend that cannot take the model is `unsupported` with the reason; any failure stays in
its own rows: it never costs the results row or another backend's rows.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.core.columns import Status
from bench.run.measure import backends, inference
from bench.run.measure.point_noise import PointWatch
from bench.run.precision import Precision

CURVE_SHARE = 0.75  # the curve starts nothing after this share of the run's time limit (the row must not time out)
Tester = Callable[[nn.Module], "float | None"]  # the model -> its test metric (the model's own test pass)
Inputs = Callable[[int], tuple]  # a batch size -> the model's example inputs on the run's device and precision


@dataclass
class Curve:
    """What the curve needs of the run: its config, trained model, device and precision, and how to test it."""

    config: Any  # bench.core.config.RunConfig
    model: Any  # the trained LightningModule, with the weights it was tested with
    device: torch.device
    precision: Precision
    inputs: Inputs
    tester: Tester | None  # None: no quality on this data
    metric: tuple[str, str]  # (name, direction)
    deadline: float  # time.monotonic() after which nothing more is started
    budget_s: float = inference.BUDGET_S


def tester(make_trainer: Callable[[], Any], datamodule: Any, metric: str) -> Tester:
    """The model's own test pass (a fresh one-device Trainer each time) -> its `test/<metric>`."""
    def test(model: nn.Module) -> float | None:
        results = make_trainer().test(model, datamodule, verbose=False)
        value = results[0].get(f"test/{metric}") if results else None
        return None if value is None else float(value)

    return test


def batch_sizes(config: Any) -> list[int]:
    return [int(b) for b in config.infer_batch_sizes.split(",")] if config.infer_batch_sizes else [config.batch_size]


def network(model: nn.Module) -> nn.Module | None:
    """The network the model's forward and test go through (`self.net`), None when it has none."""
    net = getattr(model, "net", None)
    return net if isinstance(net, nn.Module) else None


@contextmanager
def standing_in(model: nn.Module, module: nn.Module) -> Iterator[None]:
    """The backend in place of the model's `net` while inside (the trained network back afterwards)."""
    net = model.net
    model.net = module
    try:
        yield
    finally:
        model.net = net


class TestedWeights(nn.Module):
    """The backend in the model's test pass: a test that reloads its network's weights first (the DQN's best ones)
    may reload the weights the backend was built from, which it already holds; any other weights are refused."""

    def __init__(self, backend: nn.Module, net: nn.Module):
        super().__init__()
        self.backend, self.source = backend, [net]  # a list: the network is not this module's submodule

    def forward(self, *args: Any) -> Any:
        return self.backend(*args)

    def load_state_dict(self, state: Any, strict: bool = True, assign: bool = False) -> Any:
        held = self.source[0].state_dict()
        if state.keys() != held.keys() or not all(torch.equal(state[k].to(v.device), v) for k, v in held.items()):
            raise RuntimeError("the backend holds the tested weights; the test loads others into its network")
        return nn.modules.module._IncompatibleKeys([], [])


def one_line(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0][:300]


def failure(exc: BaseException) -> Status:
    out_of_memory = isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)) or any(
        phrase in str(exc).lower() for phrase in ("out of memory", "can't allocate memory"))  # CUDA; CPU allocator
    return Status.OOM if out_of_memory else Status.ERROR


def quality(curve: Curve, built: backends.Built, has_net: bool) -> tuple[float | None, str]:
    """The model's test metric with the backend standing in for its network, and a note when there is none."""
    if curve.tester is None:
        return None, ""
    if not has_net:
        return None, "metric not measured through the backend: the model's test does not go through a `net`"
    try:
        with standing_in(curve.model, TestedWeights(built.module, curve.model.net)):
            return curve.tester(curve.model), ""
    except Exception as exc:
        return None, f"metric through the backend failed: {one_line(exc)}"
    finally:
        curve.model.to(curve.device)  # Lightning's test teardown moves the module to the CPU


def timed_point(curve: Curve, call_target: nn.Module, batch: int) -> dict[str, Any]:
    """One batch size through the backend: latency percentiles and back-to-back throughput (today's timing)."""
    if time.monotonic() > curve.deadline:
        return {"status": Status.TIMEOUT, "message": "not measured: the run's time limit was near"}
    watch = PointWatch().start()  # the point's own noise reading: the row's covered the training, not this
    try:
        latency = inference.inference_timing(call_target, curve.inputs(batch), curve.device, curve.precision,
                                             curve.budget_s)
    except Exception as exc:
        return {"status": failure(exc), "message": one_line(exc)}
    return latency.columns() | watch.stop() | {"status": Status.OK, "message": latency.note(curve.budget_s)}


def backend_points(curve: Curve, backend: str, sizes: list[int]) -> list[dict[str, Any]]:
    """A backend's rows: built once (from the first batch size's inputs), tested once, timed at every size."""
    if time.monotonic() > curve.deadline:
        return [{"status": Status.TIMEOUT, "message": "not measured: the run's time limit was near"}] * len(sizes)
    net = network(curve.model)
    target = net if net is not None else curve.model
    try:
        built = backends.build(backend, target, curve.inputs(max(2, sizes[0])), curve.device,
                               curve.config.precision)
    except backends.Unsupported as exc:
        return [{"status": Status.UNSUPPORTED, "message": str(exc)}] * len(sizes)
    except Exception as exc:
        return [{"status": failure(exc), "message": f"{backend} failed: {one_line(exc)}"}] * len(sizes)
    common = {"backend_detail": built.detail, "export_s": built.export_s, "compile_s": built.compile_s}
    value, note = quality(curve, built, net is not None)
    common |= {"metric_value": value}
    points = []
    for batch in sizes:
        if net is not None:
            with standing_in(curve.model, built.module):
                point = timed_point(curve, curve.model, batch)
        else:
            point = timed_point(curve, built.module, batch)
        point["message"] = "; ".join(filter(None, [point.get("message", ""), note]))
        points.append(common | point)
    del built
    gc.collect()
    return points


def relative_to_eager(rows: list[dict[str, Any]]) -> None:
    """speedup_vs_eager and metric_drift of each row against the eager row at its batch size."""
    eager = {row["infer_batch_size"]: row for row in rows if row["backend"] == "eager" and row["status"] == Status.OK}
    for row in rows:
        base = eager.get(row["infer_batch_size"])
        if base is None or row["status"] != Status.OK:
            continue
        if base.get("infer_samples_per_s") and row.get("infer_samples_per_s"):
            row["speedup_vs_eager"] = row["infer_samples_per_s"] / base["infer_samples_per_s"]
        if base.get("metric_value") is not None and row.get("metric_value") is not None:
            row["metric_drift"] = row["metric_value"] - base["metric_value"]


def tested_weights(config: Any, model: nn.Module) -> tuple[dict[str, torch.Tensor] | None, str]:
    """A copy of the weights the test measured, when the run measures the curve (the speed window trains on after
    the test): their quality through each backend is then comparable with the results row's. With the note why
    the curve is not measured where it was asked for and cannot be."""
    if not config.asks_for_curve:
        return None, ""
    if config.world_size > 1:
        return None, "inference backends not measured: one device only (this run is DDP)"
    return {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}, ""


Progress = Callable[[list[dict[str, Any]], list[str]], None]  # (rows so far, backends not yet measured)


def run(curve: Curve, tested: dict[str, torch.Tensor], progress: Progress | None = None) -> list[dict[str, Any]]:
    """The curve of the tested weights (smoke: the short timing budget of smoke runs)."""
    curve.model.load_state_dict(tested)
    curve.model.to(curve.device).eval()
    if curve.config.profile == "smoke":
        curve.budget_s = inference.SMOKE_BUDGET_S
    return inference_rows(curve, progress)


def inference_rows(curve: Curve, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Every (backend, batch size) of the run as inference.csv rows, the run's config columns in each; `progress`
    hears of the rows after each backend, so a run that ends during the curve keeps what it measured."""
    config, sizes = curve.config, batch_sizes(curve.config)
    backend_names = curve.config.infer_backends.split(",")
    if "eager" in backend_names:  # eager first: the others' speed-up and drift are against it
        backend_names = ["eager"] + [name for name in backend_names if name != "eager"]
    head = config.point_head(*curve.metric)
    rows: list[dict[str, Any]] = []
    for done, backend in enumerate(backend_names, start=1):
        for batch, point in zip(sizes, backend_points(curve, backend, sizes)):
            rows.append(head | {"backend": backend, "infer_batch_size": batch} | point)
        relative_to_eager(rows)
        if progress is not None:
            progress([dict(row) for row in rows], backend_names[done:])
    return rows
