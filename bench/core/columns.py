"""The results columns and statuses: one table from which the CSV header, results/README.md, compare, report and
console all come (step: the row's shape, shared by every step of the data path)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

from bench.core.axes import AXES, identity_rule

SCHEMA_VERSION = 6  # what each version added, and how older files read: results/README.md
READABLE_SCHEMA_VERSIONS = (1, 2, 3, 4, 5, 6)


class Status(str, Enum):
    """How a run ended; every row has exactly one."""

    OK = "ok"
    OOM = "oom"
    UNSUPPORTED = "unsupported"
    UNAVAILABLE = "unavailable"
    DIVERGED = "diverged"
    TIMEOUT = "timeout"
    ERROR = "error"

    __str__ = str.__str__  # "ok", not "Status.OK", in CSV cells and f-strings

    @property
    def measured(self) -> bool:
        """Outcomes of the benchmark itself (an OOM is a result); error and timeout are failures of the run."""
        return self not in (Status.ERROR, Status.TIMEOUT)


STATUS_MEANINGS = {
    Status.OK: "trained, tested and measured",
    Status.OOM: "out of memory: recorded as is, the batch size is never changed silently",
    Status.UNSUPPORTED: "the device cannot run this precision / compile; reason in `message`",
    Status.UNAVAILABLE: "the device is not present",
    Status.DIVERGED: "the training loss became NaN/inf",
    Status.TIMEOUT: "killed at `--time-limit`",
    Status.ERROR: "any other exception; its last line in `message`",
}


@dataclass(frozen=True)
class Column:
    """One results column: where it belongs, how to read it and which way is better."""

    name: str
    group: str  # config | outcome | quality | speed | latency | memory | cost | energy | environment
    description: str
    numeric: bool = False
    better: str | None = None  # "max" / "min" for gated metrics; "row" = the row's metric_direction says
    unit: str = ""
    console: bool = False  # shown in the console table at the end of a sweep


def _c(name, group, description, numeric=False, better=None, unit="", console=False) -> Column:
    return Column(name, group, description, numeric, better, unit, console)


TABLE: tuple[Column, ...] = (
    # config: the axes of bench/core/axes.py (the identity and the repeat axis), in their order
    *(_c(axis.csv, "config", axis.description, console=axis.console) for axis in AXES if axis.csv),
    # outcome
    _c("status", "outcome", "how the run ended: " + "; ".join(f"`{s}` ({m})" for s, m in STATUS_MEANINGS.items()),
       console=True),
    _c("message", "outcome", "reason for a non-ok status, and notes (e.g. quality not applicable on synthetic "
       "data), separated by `; `"),
    # quality
    _c("metric_name", "quality", "the model's quality metric, logged as `test/<name>` (e.g. `acc`, "
       "`exact_match`, `fid`, `mse`, `return`)", console=True),
    _c("metric_value", "quality", "that metric on the held-out test split, of the model where training stopped (the "
       "target or the cap); empty when the data has no quality", numeric=True, better="row", console=True),
    _c("metric_direction", "quality", "`max` (higher is better) or `min`"),
    _c("metric_target", "quality", "the model's declared target on its default datamodule (empty on other data)",
       numeric=True),
    _c("other_metrics", "quality", "the run's other test metrics as a JSON object `{name: {\"value\": v, "
       "\"better\": \"max\"|\"min\"}}` (IS next to a GAN's FID, PSNR/SSIM next to the autoencoder's MSE, token "
       "accuracy next to exact match); compare gates each by its direction"),
    _c("quality_drift", "quality", "`metric_value` minus the same config's `32-true` value, when both are in the "
       "sweep (absolute, in the metric's units)", True),
    _c("time_to_target_s", "quality", "seconds from the start of training (set-up such as the GAN's feature "
       "classifier, and the harness's W&B step logging excluded) until `val/<metric>` first reached the target at a "
       "validation (MLPerf/DAWNBench; `stop_at_target` on: stopped there); empty if never", True, "min", "s", True),
    _c("reached_target", "quality", "`yes`: `val/<metric>` reached the target (converged), `no`: not within the cap "
       "(a seconds cap: `message` says so), empty: no target; the report and compare count them"),
    _c("target_metric_value", "quality", "`val/<metric>` the target was judged on: the first value that reached it, "
       "else the best within the cap (`metric_value` is the test split's, measured after training)", True),
    _c("train_samples_per_s", "speed", "training samples per second (all devices) of the Trainer loop: median "
       "over the speed window's 10-step sub-windows (an epoch's end or a validation pauses a sub-window's clock), "
       "each step timed from the end of the previous batch (data fetch and Lightning's loop included)", numeric=True,
       better="max", unit="samples/s", console=True),
    _c("train_samples_per_s_spread", "speed", "how steady the run's speed was: (max - min) / median of its 10-step "
       "sub-window throughputs (0.1 = 10 % apart); configs closer than this need --repeats", True, None, "ratio"),
    _c("timed_steps", "speed", "training steps inside the speed window: 100 after 10 warm-up steps (on a CPU it may "
       "stop at 10 s once it has 20), the quality run's own and, where it stopped sooner, the rest from a short fit "
       "after it (smoke: the quality run's few steps after the first); the host waits for the device only at the "
       "ends of 10-step sub-windows and where their clock pauses", numeric=True),
    _c("device_samples_per_s", "speed", "the model's own cost on the device: samples / device-busy time over 10 "
       "profiled steps after the window (torch.profiler: the union of kernel and copy intervals on a GPU, of aten "
       "op intervals on a CPU), independent of host-side loop overhead", numeric=True, better="max",
       unit="samples/s"),
    _c("device_busy_fraction", "speed", "`train_samples_per_s / device_samples_per_s`: the share of a Trainer "
       "step the device was busy (near 1: device-bound; low: host-bound, launch or Python overhead); on a CPU, "
       "whose op times the profiler slows, the share is taken within the profiled steps", numeric=True,
       unit="ratio"),
    _c("compile_s", "speed", "compiled runs: the first training step's time above a typical step (torch.compile "
       "compiling the training graph); never inside a timed window", numeric=True, unit="s"),
    _c("infer_samples_per_s", "speed", "eval-mode forward passes of `example_input(batch_size)` back to back "
       "(GPU: the host waits at the end only; CPU: the latency calls' mean), on the run's device and precision",
       numeric=True, better="max", unit="samples/s", console=True),
    _c("data_wait_fraction", "speed", "share of the speed window's time spent fetching training batches: inside "
       "the train loader's `next()` (Lightning's fetcher, timed through its profiler hook; DataLoader workers' "
       "latency included, the host-to-device copy not)", numeric=True, better="min", unit="ratio"),
    _c("host_overhead_fraction", "speed", "share of the speed window's time the host spent between one training "
       "step and the next other than fetching: Lightning's loop and hooks, callbacks, the LR scheduler, the batch's "
       "move to the device. Together with `data_wait_fraction` it is all host time outside `training_step`; the "
       "rest of the window is the step itself", numeric=True, unit="ratio"),
    # latency
    _c("latency_p50_ms", "latency", "inference latency median at `batch_size`: each forward pass timed alone "
       "(CUDA events on a GPU, the host waiting after each), of the trained (compiled) module", numeric=True,
       better="min", unit="ms"),
    _c("latency_p90_ms", "latency", "inference latency 90th percentile; empty below 100 timed calls",
       numeric=True, unit="ms"),
    _c("latency_p95_ms", "latency", "inference latency 95th percentile; empty below 100 timed calls", numeric=True,
       better="min", unit="ms"),
    _c("latency_p99_ms", "latency", "inference latency 99th percentile; empty below 1,000 timed calls",
       numeric=True, unit="ms"),
    _c("latency_samples", "latency", "single calls the percentiles were taken over: >= 10, then until 1,000 over "
       ">= 0.2 s, or 3 s of calls (quick, smoke 0.5 s); `message` says which percentiles stayed empty and why", True),
    # memory
    _c("peak_gpu_mem_allocated_mb", "memory", "`torch.cuda.max_memory_allocated` after the run (peak stats reset "
       "before fit)", numeric=True, better="min", unit="MiB"),
    _c("peak_gpu_mem_reserved_mb", "memory", "`torch.cuda.max_memory_reserved` (what the caching allocator held)",
       numeric=True, unit="MiB"),
    _c("peak_rss_mb", "memory", "peak resident set size of the run's process (or of its DDP children, whichever "
       "is larger)", numeric=True, better="min", unit="MiB", console=True),
    _c("rss_after_import_mb", "memory", "resident set size of the run's process after importing torch, Lightning "
       "and the registries, before building anything: `peak_rss_mb` minus this is the run's own CPU memory",
       numeric=True, unit="MiB"),
    # cost
    _c("params", "cost", "parameter count of the model", numeric=True),
    _c("flops_per_sample", "cost", "training FLOPs per sample of one real optimizer step (forward, backward, "
       "update; every network and sampling pass a manual-optimization model runs: the GAN's generator and "
       "discriminator passes, the DBN's Gibbs sampling, the DQN's target network), counted by "
       "`torch.utils.flop_counter` over the first step of the short fit after the quality run (compiled: the second, "
       "after compiling; smoke: of the quality fit) on its real batch, "
       "plus analytic counts where the counter is blind (cuDNN RNN/LSTM/GRU, CPU flash attention); the convention "
       "is under FLOPs above; the same in every precision", numeric=True, unit="FLOP"),
    _c("achieved_tflops", "cost", "`flops_per_sample * train_samples_per_s / 1e12`", numeric=True,
       unit="TFLOP/s"),
    _c("infer_flops_per_sample", "cost", "FLOPs per sample of the eval-mode forward the inference timing runs "
       "(no_grad; the fused transformer fast path, invisible to the counter, switched off while counting: the same "
       "matmuls), counted the same way", numeric=True, unit="FLOP"),
    _c("infer_achieved_tflops", "cost", "`infer_flops_per_sample * infer_samples_per_s / 1e12`", numeric=True,
       unit="TFLOP/s"),
    _c("peak_tflops", "cost", "the denominator used for MFU, x devices: `--peak-tflops`, else the dense "
       "datasheet peak of the GPU for `peak_dtype` (bench/run/measure/peaks.py), else Lightning's table; empty when "
       "unknown (CPUs)", numeric=True, unit="TFLOP/s"),
    _c("peak_dtype", "cost", "the dtype whose peak was used, read at measurement time: for 32-true `tf32` or "
       "`fp32` by what the kernels may use (matmuls by `matmul_precision`, convolutions and RNNs by cuDNN's TF32 "
       "switch `torch.backends.cudnn.allow_tf32`, on by default); where the two differ and the model has both "
       "kinds of FLOPs, e.g. `tf32 conv/rnn 90% + fp32 matmul`, the peak is the FLOP-weighted harmonic mean; "
       "`bf16`/`fp16` for 16-bit precisions; `fp64` (the FP64 tensor-core rate where the GPU has one)"),
    _c("peak_source", "cost", "where `peak_tflops` came from: `table: <gpu>`, `lightning`, `--peak-tflops`"),
    _c("mfu", "cost", "`achieved_tflops / peak_tflops`", numeric=True, unit="ratio"),
    _c("epochs", "cost", "epochs the quality run completed (to its target or cap)", numeric=True),
    _c("epoch_cap", "cost", "epochs the quality run was allowed: its profile's (`dnnbench list`); quick on cuda "
       "takes standard's (it still stops at its target)", numeric=True),
    _c("steps", "cost", "optimizer steps the quality run took (to its target or cap)", numeric=True),
    _c("wall_s", "cost", "wall-clock seconds of the whole run (data, fit, test, measurements)", numeric=True,
       unit="s", console=True),
    # energy: the machine's state over the timed windows (bench/run/measure/energy.py)
    _c("sm_clock_start_mhz", "energy", "cuda rows: the GPU's SM clock (NVML) where the speed window started (the "
       "lowest of a DDP run's GPUs)", numeric=True, unit="MHz"),
    _c("sm_clock_end_mhz", "energy", "cuda rows: the SM clock where the speed window ended", numeric=True, unit="MHz"),
    _c("sm_clock_min_mhz", "energy", "cuda rows: the lowest SM clock polled every 0.1 s during the speed window",
       numeric=True, unit="MHz"),
    _c("throttle_reasons", "energy", "cuda rows: NVML clock-event (throttle) reasons active at any poll during the "
       "speed window, comma-separated (`sw_power_cap`, `hw_slowdown`, `sw_thermal`, `hw_thermal`, `hw_power_brake`, "
       "`applications_clocks`, `sync_boost`, `display_clocks`; `gpu_idle` left out); `none` when there were none"),
    _c("power_mean_w", "energy", "mean power over the speed window: energy / seconds from the cumulative counter "
       "(cuda: the run's GPUs; cpu: the CPU packages), or NVML's sampled power where the GPU has no counter",
       numeric=True, unit="W"),
    _c("train_joules_per_sample", "energy", "energy of the speed window / its samples, from the cumulative counter "
       "(`nvmlDeviceGetTotalEnergyConsumption` summed over the run's GPUs; RAPL package counters on cpu rows); "
       "empty with the reason in `energy_note` where there is no counter or the device was shared",
       numeric=True, better="min", unit="J"),
    _c("infer_joules_per_sample", "energy", "energy of back-to-back eval forward passes (at least 0.5 s of them, "
       "after the latency timing) / their samples, from the same counter", numeric=True, better="min", unit="J"),
    _c("energy_to_target_j", "energy", "energy from the start of training until the quality metric first reached "
       "its target (the interval of `time_to_target_s`), from the same counter; empty if never reached",
       numeric=True, better="min", unit="J"),
    _c("energy_source", "energy", "the counter the energy cells come from: `nvml`, `rapl`, or empty"),
    _c("energy_note", "energy", "why energy or clock cells are empty (no counter, RAPL not readable, other "
       "processes on the GPU, several runs on one CPU package)"),
    # environment
    _c("device_name", "environment", "GPU name, or the CPU's model"),
    _c("cpu_model", "environment", "the CPU's brand string (py-cpuinfo)"),
    _c("cpu_threads", "environment", "logical CPUs of the machine", numeric=True),
    _c("torch_threads", "environment", "intra-op threads torch used in the run (`torch.get_num_threads()`)",
       numeric=True),
    _c("gpu_driver", "environment", "NVIDIA driver version (NVML); empty without one"),
    _c("torch_version", "environment", "torch version in the run's process"),
    _c("lightning_version", "environment", "lightning version in the run's process"),
    _c("cuda_version", "environment", "CUDA version torch was built with"),
    _c("cudnn_version", "environment", "cuDNN version torch loads (`torch.backends.cudnn.version()`)"),
    _c("env_vars", "environment", "the environment variables that change speed or placement and were set "
       "(`CUDA_VISIBLE_DEVICES`, `OMP_NUM_THREADS`, ...), as a JSON object"),
    _c("git_commit", "environment", "short commit of the dnnbench checkout (`-dirty` when its code differs)"),
    _c("hostname", "environment", "machine name"),
    _c("devices_used", "environment", "what the run was given: `cuda:<GPU ids>` (as CUDA_VISIBLE_DEVICES names "
       "them; `--parallel` and Ray pin each run to its own) and `cpu:<cores>` (its CPU affinity; `--parallel` "
       "pins runs to disjoint core sets)"),
    _c("started_at", "environment", "local start time of the run"),
    _c("load_avg_start", "environment", "the machine's 1-minute load average when the run started "
       "(`os.getloadavg`; earlier runs of the sweep count too)", numeric=True),
    _c("load_avg_end", "environment", "the 1-minute load average when the run ended (this run counts too)",
       numeric=True),
    _c("load_per_core_start", "environment", "`load_avg_start` per logical CPU: from 1.5 the run started on a "
       "loaded machine and is marked noisy (one sweep alone, a torch thread per core, stays near 1)",
       numeric=True),
    _c("other_cpu_cores", "environment", "CPU cores used on average, while the run ran, by everything but the run: "
       "the busy time of the cores it may use (/proc/stat via psutil, all but idle and iowait; steal included) "
       "minus the CPU time of the run's own process tree (its threads, live descendants and descendants that "
       "exited) and of its harness (the sweep and the warm server that launched it and the sweep's W&B service, "
       "their own threads only); short-lived processes and other sweeps included", numeric=True, unit="cores"),
    _c("other_cpu_cores_peak", "environment", "the same over the busiest one-second sample of the run",
       numeric=True, unit="cores"),
    _c("busy_processes", "environment", "the busiest other processes alive at the run's end, as `name (pid) "
       "cores` (names only: `other_cpu_cores` is the measure)"),
    _c("foreign_gpu_processes", "environment", "processes other than the run's on its GPUs, at start or end "
       "(NVML); empty when NVML is not available", numeric=True),
    _c("noise_warning", "environment", "why this run's speed may be off: it started on a loaded machine "
       "(`load_per_core_start` >= 1.5), others used its CPU cores (`other_cpu_cores` >= 0.5, or 10% of the cores "
       "it may use if more, on average or for 10% of the run and 3 s), other processes used its GPU, or it did not "
       "run for 2 s or more (stopped, starved); empty when alone. Console, report and compare show it"),
    _c("schema_version", "environment", f"version of this column set ({SCHEMA_VERSION})"),
    _c("reproduce", "environment", "the `dnnbench run ...` command that re-runs this row (same seed; repeat 0)"),
)

BY_NAME = {column.name: column for column in TABLE}
COLUMNS = [column.name for column in TABLE]
NUMERIC = [column.name for column in TABLE if column.numeric]
GATED = [column.name for column in TABLE if column.better]  # what compare can judge (`--metrics all`)
CONSOLE = [column.name for column in TABLE if column.console]
GROUPS = list(dict.fromkeys(column.group for column in TABLE))


def of_group(group: str) -> list[str]:
    return [column.name for column in TABLE if column.group == group]


def heading(name: str) -> str:
    """A column's name with its unit, for table headers."""
    unit = BY_NAME[name].unit if name in BY_NAME else ""
    return f"{name} ({unit})" if unit else name


SI_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"))


def number(value: Any, signed: bool = False) -> str:
    """A number as tables and the console show it: 4 significant digits in plain notation, an SI prefix from a
    million on (`1.235 G`), never scientific notation; empty for a missing value."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    if math.isnan(x):
        return ""
    sign = "+" if signed and x > 0 else ""
    if math.isinf(x):
        return f"{sign}{x}"
    for scale, prefix in SI_PREFIXES:
        if abs(x) >= scale:
            return f"{sign}{x / scale:.4g} {prefix}"
    digits = max(0, 3 - math.floor(math.log10(abs(x)))) if x else 0
    text = f"{x:.{digits}f}"
    return sign + (text.rstrip("0").rstrip(".") if "." in text else text)


def markdown_docs() -> str:
    """The column reference of results/README.md, one table per group (a test checks the README matches)."""
    lines = [identity_rule(), ""]
    for group in GROUPS:
        lines += [f"### {group.capitalize()}", "| column | unit | better | meaning |", "|---|---|---|---|"]
        for column in TABLE:
            if column.group == group:
                better = {"row": "`metric_direction`", None: ""}.get(column.better, column.better)
                lines.append(f"| `{column.name}` | {column.unit} | {better} | {column.description} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # python -m bench.core.columns > the column section of results/README.md
    print(markdown_docs(), end="")
