"""mlp: the feedforward network (fully connected layers, ReLU, dropout)."""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_modules import register
from lightning_modules.base import BenchSpec, Classifier, SizePreset


class MLPNet(nn.Module):
    """Flatten -> [Linear -> ReLU -> Dropout] x len(hidden_sizes) -> Linear."""

    def __init__(self, in_features: int, hidden_sizes: tuple[int, ...], num_classes: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, num_classes)


@register("mlp")
class MLP(Classifier):
    """Feedforward classifier over flattened inputs."""

    bench = BenchSpec(
        task="classification", accepts=("image", "sequence"),
        metric="acc", metric_direction="max",
        # Caps: quality runs stop at the target. At lr 3e-3 seeds 0-4 reach val 0.93 by epoch 4 of a 6-epoch
        # one-cycle (1e-3 over 4 epochs: three of five) and by epoch 6 of a 10-epoch one (issue 21).
        epochs={"smoke": 1, "quick": 6, "standard": 10, "full": 30},
        classic=SizePreset(model={"lr": 3e-3}, datamodule="mnist5k", batch_size=128, metric_target=0.93,
                           smoke_model={"hidden_sizes": (16,)}),
        # Four 8192-wide layers at batch 4096: every matmul is large enough to run the GPU's tensor cores flat out.
        large=SizePreset(model={"hidden_sizes": (8192, 8192, 8192, 8192)},
                         data={"shape": (1, 64, 64), "num_classes": 1000, "num_samples": 32768}, batch_size=4096,
                         smoke_model={"hidden_sizes": (32, 32, 32, 32)}, smoke_data={"num_samples": 256},
                         smoke_batch_size=32),
    )

    def __init__(
        self,
        input_shape: tuple[int, ...] = (1, 28, 28),
        num_classes: int = 10,
        hidden_sizes: tuple[int, ...] = (512, 256),
        dropout: float = 0.2,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
    ) -> None:
        super().__init__(num_classes, lr, weight_decay)
        self.save_hyperparameters()
        self.net = MLPNet(math.prod(input_shape), tuple(hidden_sizes), num_classes, dropout)
