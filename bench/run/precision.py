"""The precision table: for each Lightning precision, its autocast, weight and FLOP/peak dtypes and where it runs
(step: a fact the planner, the session and the cost measurement all read)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.core.axes import PRECISION_NAMES
from bench.core.choices import UNSUPPORTED_ON


@dataclass(frozen=True)
class Precision:
    """What a Lightning precision string means for measurement."""

    name: str
    compute_dtype: torch.dtype  # the dtype matmuls run in: picks the peak FLOP/s for MFU
    autocast_dtype: torch.dtype | None = None  # mixed precisions: autocast around forward passes
    weight_dtype: torch.dtype | None = None  # true precisions other than fp32: inputs are cast to the weights'
    cpu_unsupported: str | None = None  # why this cannot run on a CPU, if it cannot

    def unsupported_reason(self, device: str) -> str | None:
        """Why `device` ("cpu" / "cuda") cannot run this precision, checked before any work; None if it can."""
        if device == "cpu":
            return self.cpu_unsupported
        if device == "cuda" and torch.cuda.is_available() and self.compute_dtype == torch.bfloat16 \
                and not torch.cuda.is_bf16_supported():
            return f"{torch.cuda.get_device_name(0)} does not support bfloat16"
        return None

    def cast_inputs(self, args: tuple) -> tuple:
        """Floating inputs in the weights' dtype (bf16-true, 64-true); other precisions take them as they are."""
        if self.weight_dtype is None:
            return args
        return tuple(x.to(self.weight_dtype) if torch.is_tensor(x) and x.is_floating_point() else x for x in args)

    def autocast(self, device_type: str):
        """The autocast context of a forward pass at this precision (disabled for true precisions)."""
        if self.autocast_dtype is None:
            return torch.autocast(device_type, enabled=False)
        return torch.autocast(device_type, dtype=self.autocast_dtype)


PRECISIONS: dict[str, Precision] = {p.name: p for p in (
    Precision("32-true", torch.float32),
    Precision("16-mixed", torch.float16, autocast_dtype=torch.float16,
              cpu_unsupported=UNSUPPORTED_ON[("16-mixed", "cpu")]),
    Precision("bf16-mixed", torch.bfloat16, autocast_dtype=torch.bfloat16),
    Precision("bf16-true", torch.bfloat16, weight_dtype=torch.bfloat16),
    Precision("64-true", torch.float64, weight_dtype=torch.float64),
)}
assert tuple(PRECISIONS) == PRECISION_NAMES  # the names live in bench/core/axes.py, read without torch
