"""What each config axis may hold (step: a `dnnbench run` flag's text -> the values it names, or a PlanError naming
the flag and what it takes).

A sweep axis's parser turns its comma list into the fields each of its values sets (`--devices cpu:2` sets `device`
and `num_devices`); bench/core/axes.py hangs each parser on its axis and bench/core/config.py's `matrix` multiplies
them out. Plain checks, no registry: whether a model declares a size or takes a datamodule is planning's question.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from bench.core.errors import PlanError
from bench.core.profiles import SIZES

AUTO = "auto"  # batch_size_mode of a searched batch size (its identity cell reads `auto`, whatever was found)
ON_OFF = ("on", "off")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's modes (reduce-overhead: CUDA graphs)
MATMUL_PRECISIONS = ("highest", "high", "medium")  # torch.set_float32_matmul_precision: high/medium allow TF32
MEMORY_FORMATS = ("contiguous", "channels_last")
Precision = Literal["32-true", "16-mixed", "bf16-mixed", "bf16-true", "64-true"]  # as Lightning types them
PRECISION_NAMES: tuple[Precision, ...] = get_args(Precision)  # bench/run/precision.py: their dtypes
# Precisions a device type cannot run, and why (read by planning, which refuses them, and by the child's precheck).
# Lightning would silently run bf16-mixed instead of 16-mixed on a CPU: a row labelled 16-mixed would be a lie.
UNSUPPORTED_ON = {("16-mixed", "cpu"): "16-mixed is not supported on CPU (Lightning substitutes bf16-mixed); "
                                       "use bf16-mixed"}
STOP_AT_TARGET = (AUTO, "on", "off")  # auto: the profile's own rule (bench/core/profiles.py STOPS_AT_TARGET)
INFER_BACKENDS = ("eager", "compile", "export", "onnxruntime", "int8")  # bench/run/measure/backends.py builds each
DEVICE_TYPES = ("cpu", "cuda")

Choices = list[dict[str, Any]]  # a sweep axis's values, each as the RunConfig fields it sets ({}: the defaults)


def comma_list(text: str, flag: str) -> list[str]:
    """A comma list naming at least one value, none twice."""
    return distinct([part.strip() for part in text.split(",") if part.strip()], flag)


def distinct(values: list, flag: str) -> list:
    if not values:
        raise PlanError(f"{flag} is empty: give at least one value")
    repeated = sorted({str(v) for i, v in enumerate(values) if v in values[:i]})
    if repeated:
        raise PlanError(f"{flag} names {', '.join(repeated)} more than once")
    return values


def parse_device(spec: str) -> tuple[str, int]:
    """'cpu' -> ('cpu', 1); 'cuda:4' -> ('cuda', 4)."""
    kind, _, count = spec.partition(":")
    if kind not in DEVICE_TYPES:
        raise ValueError(f"unknown device {spec!r}; use cpu, cuda, or cpu:N / cuda:N for N-device DDP runs")
    if count and (not (count.isascii() and count.isdigit()) or int(count) < 1):  # '²' is a digit
        raise ValueError(f"device count in {spec!r} must be a positive integer")
    return kind, int(count or 1)


def devices(text: str) -> Choices:
    specs = comma_list(text, "--devices")
    if specs == ["auto"]:
        import torch  # only `run --devices auto` gets here, and asks torch what is there

        specs = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    try:
        parsed = [parse_device(d) for d in specs]
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    distinct([kind if count == 1 else f"{kind}:{count}" for kind, count in parsed], "--devices")  # cpu = cpu:1
    return [{"device": kind, "num_devices": count} for kind, count in parsed]


def precisions(text: str) -> Choices:
    """32-true first: a config's other precisions run after it, so their quality drift can be filled in."""
    chosen = comma_list(text, "--precisions")
    unknown = [p for p in chosen if p not in PRECISION_NAMES]
    if unknown:
        raise PlanError(f"unknown precision(s) {unknown}; choose from {', '.join(PRECISION_NAMES)}")
    return [{"precision": p} for p in sorted(chosen, key=lambda p: p != "32-true")]


def compile_flags(text: str) -> Choices:
    flags = comma_list(text, "--compile")
    if any(c not in ON_OFF for c in flags):
        raise PlanError(f"--compile takes off, on or off,on; got {text!r}")
    return [{"compile": c == "on"} for c in flags]


def compile_modes(text: str) -> Choices:
    modes = comma_list(text, "--compile-mode")
    unknown = [m for m in modes if m not in COMPILE_MODES]
    if unknown:
        raise PlanError(f"--compile-mode takes a comma list of {', '.join(COMPILE_MODES)}; got {text!r}")
    return [{"compile_mode": m} for m in modes]


def batch_sizes(text: str) -> Choices:
    """`default` (each model's own), or a comma list of positive integers and `auto` (search the largest that fits;
    the search starts at the default)."""
    if text == "default":
        return [{}]
    texts = comma_list(text, "--batch-sizes")
    try:
        chosen = [b if b == AUTO else int(b) for b in texts]
    except ValueError:
        raise PlanError(f"--batch-sizes must be positive integers or auto; got {text!r}") from None
    if any(isinstance(b, int) and b < 1 for b in chosen):
        raise PlanError("--batch-sizes must be positive integers or auto")
    distinct(chosen, "--batch-sizes")  # 16 and 016 are one batch size
    return [{"batch_size_mode": AUTO} if b == AUTO else {"batch_size": b, "batch_size_mode": "fixed"} for b in chosen]


def data(text: str) -> Choices:
    """`default` (each model's own datamodule at its size), or a comma list of datamodules."""
    return [{}] if text == "default" else [{"datamodule": name} for name in comma_list(text, "--data")]


def sizes(text: str) -> Choices:
    chosen = comma_list(text, "--sizes")
    if any(s not in SIZES for s in chosen):
        raise PlanError(f"--sizes takes a comma list of {', '.join(SIZES)}; got {text!r}")
    return [{"size": s} for s in chosen]


def infer_backends(text: str) -> str:
    """`--infer-backends` as its canonical cell (known names, in the order given; each once, none empty)."""
    names = [name.strip() for name in str(text).split(",")]
    unknown = [name for name in names if name not in INFER_BACKENDS]
    if unknown and any(names):
        raise PlanError(f"--infer-backends takes a comma list of {', '.join(INFER_BACKENDS)}; got {text!r}")
    return ",".join(distinct([name for name in names if name], "--infer-backends"))


def infer_batch_sizes(text: str | None) -> str:
    """`--infer-batch-sizes` as its canonical cell: positive integers, each once (None, the flag left out: "", the
    run's batch size; given, it names at least one)."""
    if text is None:
        return ""
    parts = [part.strip() for part in str(text).split(",")]
    if any(parts) and not all(part.isascii() and part.isdigit() and int(part) > 0 for part in parts):  # '²' a digit
        raise PlanError(f"--infer-batch-sizes takes a comma list of positive integers; got {text!r}")
    return ",".join(distinct([str(int(part)) for part in parts if part], "--infer-batch-sizes"))
