"""The inference.csv columns: one table from which its header, its part of results/README.md, compare, report and W&B
come (step: the shape of the rows beside results.csv, one per run x inference backend x batch size).

Plain data, like bench/core/columns.py, whose `Column` it uses: no torch, so `report` and `compare` read it for free.
"""

from __future__ import annotations

from bench.core.axes import AXES, INFER_BACKENDS
from bench.core.columns import Column, Status

INFERENCE_SCHEMA_VERSION = 2  # 2: each point's own noise reading (other_cpu_cores, noise_warning)
READABLE_INFERENCE_VERSIONS = (1, 2)
INFERENCE_FILE = "inference.csv"
KEY = ("backend", "infer_batch_size")  # with the run's config identity: what makes two inference rows the same


def _c(name, group, description, numeric=False, better=None, unit="") -> Column:
    return Column(name, group, description, numeric, better, unit)


INFERENCE_TABLE: tuple[Column, ...] = (
    # config: the run's, as in results.csv (so each row stands alone: compare, report and W&B key on it)
    *(_c(axis.csv, "config", axis.description) for axis in AXES if axis.csv),
    _c("run_id", "config", "the run this row belongs to (its logs are `runs/<run_id>.log`; the same config's row in "
       "results.csv has the same config columns)"),
    _c("backend", "backend", "how the trained network ran: " + ", ".join(f"`{b}`" for b in INFER_BACKENDS) +
       " (`export`: torch.export then AOTInductor; `onnxruntime`: ONNX export run by ONNX Runtime; `int8`: "
       "post-training int8 quantization; `compile`: torch.compile for inference only)"),
    _c("infer_batch_size", "backend", "batch size of the timed forward passes (`--infer-batch-sizes`)",
       numeric=True),
    _c("status", "backend", f"`{Status.OK}`; `{Status.UNSUPPORTED}` (the backend cannot take this model or "
       f"precision: reason in `message`); `{Status.ERROR}` (it failed: its last line in `message`); "
       f"`{Status.OOM}`; `{Status.TIMEOUT}` (not measured: the run's time limit was near, or the run was "
       "killed there)"),
    _c("message", "backend", "reason for a non-ok status, and notes (why the metric is empty), separated by `; `"),
    _c("backend_detail", "backend", "what ran: the ONNX Runtime version and execution provider used (CPU, CUDA, "
       "TensorRT), the quantization method and the layers it took, the compile mode"),
    _c("export_s", "backend", "seconds to export the network once per backend: torch.export (`export`), the ONNX "
       "export (`onnxruntime`), the quantizer's conversion (`int8`); the same on each of its rows",
       numeric=True, unit="s"),
    _c("compile_s", "backend", "seconds to compile once per backend: AOTInductor's build and load (`export`), "
       "the ONNX Runtime session (`onnxruntime`), torch.compile's first call (`compile`)", numeric=True, unit="s"),
    _c("infer_samples_per_s", "speed", "forward passes at `infer_batch_size` back to back through the backend "
       "(the host waits only at the end), timed as results.csv's column", numeric=True, better="max",
       unit="samples/s"),
    _c("speedup_vs_eager", "speed", "`infer_samples_per_s` / the same run's `eager` row at the same batch size",
       numeric=True, unit="x"),
    _c("latency_p50_ms", "latency", "median of single forward passes at `infer_batch_size` (CUDA events on a GPU)",
       numeric=True, better="min", unit="ms"),
    _c("latency_p90_ms", "latency", "90th percentile; empty below 100 timed calls", numeric=True, unit="ms"),
    _c("latency_p95_ms", "latency", "95th percentile; empty below 100 timed calls", numeric=True, unit="ms"),
    _c("latency_p99_ms", "latency", "99th percentile; empty below 1,000 timed calls", numeric=True, unit="ms"),
    _c("latency_samples", "latency", "single calls the percentiles were taken over (as in results.csv)",
       numeric=True),
    _c("metric_name", "quality", "the model's test metric (as results.csv's `metric_name`)"),
    _c("metric_direction", "quality", "`max` or `min`"),
    _c("metric_value", "quality", "the model's own test pass on the real test split with the backend standing in "
       "for its network (`net`), once per backend (the same on each of its rows); empty where the test does not "
       "go through it (the reason in `message`)", numeric=True, better="row"),
    _c("metric_drift", "quality", "`metric_value` minus the same run's `eager` value (absolute, in the metric's "
       "units)", numeric=True),
    _c("other_cpu_cores", "noise", "CPU cores used on average by everything but the run while this point was timed "
       "(results.csv's `other_cpu_cores`, read over the point's own timed calls)", numeric=True, unit="cores"),
    _c("noise_warning", "noise", "why this point's speed may be off: others used its cores (`other_cpu_cores` at "
       "results.csv's sharing level: 0.5 cores, or 10% of the cores if more) while it was timed; empty when it ran "
       "alone. The run's results row names its noisy points in its own `noise_warning`; compare calls a change of "
       "a noisy point's speed or latency `noise`, not a regression"),
    _c("schema_version", "environment", f"version of inference.csv's columns ({INFERENCE_SCHEMA_VERSION}; "
       "version 1 had no noise columns: read as empty)"),
)

INFERENCE_BY_NAME = {column.name: column for column in INFERENCE_TABLE}
INFERENCE_COLUMNS = [column.name for column in INFERENCE_TABLE]
INFERENCE_NUMERIC = [column.name for column in INFERENCE_TABLE if column.numeric]
INFERENCE_GATED = [column.name for column in INFERENCE_TABLE if column.better]


def markdown_docs() -> str:
    """The inference.csv column reference of results/README.md (a test checks the README matches)."""
    lines = ["| column | unit | better | meaning |", "|---|---|---|---|",
             "| config columns |  |  | the run's, as in results.csv (`model` ... `repeat`) |"]
    for column in INFERENCE_TABLE:
        if column.group != "config" or column.name == "run_id":
            better = {"row": "`metric_direction`", None: ""}.get(column.better, column.better)
            lines.append(f"| `{column.name}` | {column.unit} | {better} | {column.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m bench.core.inference_columns > the inference.csv section of results/README.md
    print(markdown_docs(), end="")
