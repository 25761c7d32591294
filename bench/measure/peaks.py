"""Dense peak FLOP/s of current NVIDIA GPUs by dtype: the MFU denominator (Lightning's table as fallback).

Figures are the vendors' datasheet numbers WITHOUT structured sparsity (datasheets often print the sparse ones,
twice as large), per GPU, in TFLOP/s. "tf32" is the tensor-core rate fp32 matmuls get when TF32 is allowed;
"fp32" the plain CUDA-core rate they get when it is not. 16-bit figures are with fp32 accumulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Matched against the lower-cased device name, most specific first (an "H100 NVL" must not match "h100").
DENSE_PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    # H200 / GH200 / H100 datasheets (Hopper): SXM 989.4 dense bf16, NVL 835.5, PCIe 756
    ("h200 nvl", {"fp64": 30.0, "fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    ("gh200", {"fp64": 34.0, "fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),
    ("h200", {"fp64": 34.0, "fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),
    ("h100 nvl", {"fp64": 30.0, "fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    ("h100 pcie", {"fp64": 26.0, "fp32": 51.0, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0}),
    ("h100", {"fp64": 34.0, "fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),  # SXM, HBM3
    # Blackwell B200 (HGX, per GPU): 2.25 PF dense 16-bit
    ("b200", {"fp64": 37.0, "fp32": 75.0, "tf32": 1125.0, "bf16": 2250.0, "fp16": 2250.0}),
    # Ampere A100 (40/80 GB, SXM and PCIe share the tensor rates)
    ("a100", {"fp64": 9.7, "fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}),
    # Ada and Ampere inference/graphics parts
    ("l40s", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.05, "fp16": 362.05}),
    ("l4", {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0}),
    ("a10g", {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0}),
    ("rtx 5090", {"fp32": 104.8, "tf32": 104.8, "bf16": 209.5, "fp16": 209.5}),
    ("rtx 4090", {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2}),
)

DTYPE_NAMES = {torch.float64: "fp64", torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


@dataclass(frozen=True)
class Peak:
    """The denominator of MFU and where it came from."""

    tflops: float | None
    dtype: str  # fp64 | fp32 | tf32 | bf16 | fp16
    source: str  # "table: <entry>" | "lightning" | "--peak-tflops" | "" (unknown, e.g. CPUs)


def tf32_allowed() -> bool:
    """Whether fp32 matmuls may run on TF32 tensor cores (torch.set_float32_matmul_precision != "highest")."""
    return torch.get_float32_matmul_precision() != "highest" or torch.backends.cuda.matmul.allow_tf32


def peak_dtype(compute_dtype: torch.dtype) -> str:
    name = DTYPE_NAMES.get(compute_dtype, "fp32")
    return "tf32" if name == "fp32" and tf32_allowed() else name


def device_peak(device: torch.device, compute_dtype: torch.dtype, world_size: int,
                override: float | None = None) -> Peak:
    """Dense peak TFLOP/s of `world_size` such devices for matmuls in `compute_dtype` under this process's settings."""
    dtype = peak_dtype(compute_dtype)
    if override is not None:
        return Peak(override, dtype, "--peak-tflops")
    if device.type != "cuda":
        return Peak(None, dtype, "")
    name = torch.cuda.get_device_name(device).lower()
    for entry, figures in DENSE_PEAK_TFLOPS:
        if entry in name and dtype in figures:
            return Peak(figures[dtype] * world_size, dtype, f"table: {entry}")
    from lightning.fabric.utilities.throughput import get_available_flops

    available = get_available_flops(device, "tfloat32" if dtype == "tf32" else compute_dtype)
    return Peak(available * world_size / 1e12 if available else None, dtype, "lightning" if available else "")
