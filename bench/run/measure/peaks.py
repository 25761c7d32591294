"""Dense peak FLOP/s of current NVIDIA GPUs by dtype: the MFU denominator (Lightning's table as fallback).

Figures are the vendors' datasheet numbers WITHOUT structured sparsity (datasheets often print the sparse ones,
twice as large), per GPU, in TFLOP/s. "tf32" is the tensor-core rate fp32 matmuls get when TF32 is allowed;
"fp32" the plain CUDA-core rate they get when it is not. 16-bit figures are with fp32 accumulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Matched against the lower-cased device name, most specific first (an "H100 NVL" must not match "h100").
# Sources (tests/run/measure/test_peaks.py holds each figure as printed there, and checks these are the dense ones):
# NVIDIA H200 datasheet; NVIDIA H100 datasheet; NVIDIA GH200 Grace Hopper Superchip datasheet; NVIDIA HGX B200 /
# DGX B200 datasheet (8 GPUs, divided by 8); NVIDIA A100 datasheet; NVIDIA L40S datasheet; NVIDIA L4 datasheet;
# NVIDIA Ada GPU architecture whitepaper (RTX 4090); NVIDIA RTX Blackwell GPU architecture whitepaper (RTX 5090).
# "fp64" is the FP64 tensor-core rate where the datasheet gives one (cuBLAS runs fp64 GEMMs on them).
DENSE_PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    # H200 / GH200 / H100 datasheets (Hopper): SXM 989.4 dense bf16, NVL 835.5, PCIe 756
    ("h200 nvl", {"fp64": 60.0, "fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    ("gh200", {"fp64": 67.0, "fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),
    ("h200", {"fp64": 67.0, "fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),
    ("h100 nvl", {"fp64": 60.0, "fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    ("h100 pcie", {"fp64": 51.0, "fp32": 51.0, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0}),
    ("h100", {"fp64": 67.0, "fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),  # SXM, HBM3
    # Blackwell B200 (HGX, per GPU): 2.25 PF dense 16-bit
    ("b200", {"fp64": 37.0, "fp32": 75.0, "tf32": 1125.0, "bf16": 2250.0, "fp16": 2250.0}),
    # Ampere A100 (40/80 GB, SXM and PCIe share the tensor rates)
    ("a100", {"fp64": 19.5, "fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}),
    # Ada and Blackwell inference/graphics parts (no FP64 tensor cores; their fp64 is left to Lightning's table)
    ("l40s", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.05, "fp16": 362.05}),
    ("l4", {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0}),
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


def cudnn_tf32_allowed() -> bool:
    """Whether fp32 convolutions and RNNs may run on TF32 tensor cores: cuDNN's own switch, on by default."""
    return bool(torch.backends.cudnn.allow_tf32)


def peak_dtype(compute_dtype: torch.dtype, tf32: bool | None = None) -> str:
    """The dtype whose peak bounds kernels computing in `compute_dtype`; fp32 is tf32 where TF32 is allowed
    (by default: the matmul setting)."""
    name = DTYPE_NAMES.get(compute_dtype, "fp32")
    return "tf32" if name == "fp32" and (tf32_allowed() if tf32 is None else tf32) else name


def table_peak(device: torch.device, dtype: str) -> tuple[float | None, str]:
    """One device's dense peak for `dtype` from the table, else Lightning's; (None, "") when unknown."""
    name = torch.cuda.get_device_name(device).lower()
    for entry, figures in DENSE_PEAK_TFLOPS:
        if entry in name and dtype in figures:
            return figures[dtype], f"table: {entry}"
    from lightning.fabric.utilities.throughput import get_available_flops

    torch_dtype = {name: dtype_ for dtype_, name in DTYPE_NAMES.items()}.get(dtype)
    available = get_available_flops(device, "tfloat32" if dtype == "tf32" else torch_dtype)  # type: ignore[arg-type]
    return (available / 1e12, "lightning") if available else (None, "")


def device_peak(device: torch.device, compute_dtype: torch.dtype, world_size: int,
                override: float | None = None, cudnn_share: float = 0.0) -> Peak:
    """Dense peak TFLOP/s of `world_size` such devices for a model computing in `compute_dtype` under this process's
    settings, read now: fp32 matmuls by the matmul precision, fp32 convolutions and RNNs by cuDNN's TF32 switch.

    `cudnn_share` is the share of the model's FLOPs in convolutions and recurrent layers; where the two settings
    differ and the model has both kinds of FLOPs, the peak is what the device would reach running each part at its
    own peak (the FLOP-weighted harmonic mean), and the dtype names both.
    """
    matmul, cudnn = peak_dtype(compute_dtype), peak_dtype(compute_dtype, cudnn_tf32_allowed())
    parts = [(dtype, share) for dtype, share in ((cudnn, cudnn_share), (matmul, 1.0 - cudnn_share)) if share > 0]
    if len({dtype for dtype, _ in parts}) <= 1:
        parts = [(parts[0][0] if parts else matmul, 1.0)]
    label = parts[0][0] if len(parts) == 1 else f"{cudnn} conv/rnn {cudnn_share:.0%} + {matmul} matmul"
    if override is not None:
        return Peak(override, label, "--peak-tflops")
    if device.type != "cuda":
        return Peak(None, label, "")
    found = [(table_peak(device, dtype), share) for dtype, share in parts]
    if any(tflops is None for (tflops, _), _ in found):
        return Peak(None, label, "")
    tflops = found[0][0][0] if len(found) == 1 else 1.0 / sum(share / peak for (peak, _), share in found)  # type: ignore[misc, operator]
    return Peak(tflops * world_size, label, " + ".join(dict.fromkeys(source for (_, source), _ in found)))  # type: ignore[operator]
