"""cnn: a small ConvNet, conv-pool blocks and a linear head, for any channel count and image size."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules import register
from lightning_modules.base import BenchSpec, Classifier, SizePreset


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    # Two 3x3 convs keep the size, the pool halves it.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.MaxPool2d(2),
    )


class ConvNet(nn.Module):
    """[conv-conv-pool] x len(channels) -> global average pool -> dropout -> linear."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], num_classes: int, dropout: float) -> None:
        super().__init__()
        blocks, width = [], in_channels
        for out in channels:
            blocks.append(conv_block(width, out))
            width = out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, C, H, W) -> (B, num_classes)


@register("cnn")
class CNN(Classifier):
    """Small ConvNet image classifier."""

    bench = BenchSpec(
        task="classification", accepts=("image",),
        metric="acc", metric_direction="max",
        # Caps: quality runs stop at the target. Seeds 0-4 reach val 0.97 by epoch 4 of a 4-epoch one-cycle (3
        # epochs: four of five) (issue 21).
        epochs={"smoke": 1, "quick": 4, "standard": 8, "full": 20},
        classic=SizePreset(datamodule="mnist5k", batch_size=128, metric_target=0.97, smoke_model={"channels": (4, 8)}),
        # VGG-like widths on ImageNet-sized images: four conv-conv-pool stages, 64 to 512 channels.
        large=SizePreset(model={"channels": (64, 128, 256, 512)},
                         data={"shape": (3, 224, 224), "num_classes": 1000, "num_samples": 2048}, batch_size=128,
                         smoke_model={"channels": (4, 4, 8, 8)},
                         smoke_data={"shape": (3, 32, 32), "num_samples": 256}, smoke_batch_size=32),
    )

    def __init__(
        self,
        input_shape: tuple[int, ...] = (1, 28, 28),
        num_classes: int = 10,
        channels: tuple[int, ...] = (16, 32, 64),
        dropout: float = 0.2,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
    ) -> None:
        super().__init__(num_classes, lr, weight_decay)
        self.save_hyperparameters()
        self.net = ConvNet(input_shape[0], tuple(channels), num_classes, dropout)
