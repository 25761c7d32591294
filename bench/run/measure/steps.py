"""What every measurement reads off a training or inference step (step: shared by speed, quality, inference, cost
and W&B): the device sync at a window's end, a batch's size, a step's loss."""

from __future__ import annotations

from typing import Any

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch_size_of(batch: Any) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0]) if torch.is_tensor(first) and first.dim() > 0 else 1


def loss_of(outputs: Any) -> torch.Tensor | None:
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    return loss.detach() if torch.is_tensor(loss) else None
