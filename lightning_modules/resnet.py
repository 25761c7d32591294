"""resnet: a residual network of BasicBlocks with BatchNorm and projection shortcuts (He et al. 2016)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules import register
from lightning_modules.base import BenchSpec, Classifier, SizePreset

# Stage layouts: (blocks per stage, channels per stage). ResNet-18 is the ImageNet design;
# ResNet-20 is the CIFAR design (3 stages of 3 blocks, 16/32/64 channels).
PRESETS = {
    "resnet18": ((2, 2, 2, 2), (64, 128, 256, 512)),
    "resnet20": ((3, 3, 3), (16, 32, 64)),
    "resnet8": ((1, 1, 1), (16, 32, 64)),
}


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a shortcut; a 1x1 conv projection when shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNetBody(nn.Module):
    """Stem -> stages (the first block of each later stage halves H, W) -> global pool -> linear."""

    def __init__(self, in_channels: int, image_size: int, blocks: tuple[int, ...], widths: tuple[int, ...],
                 num_classes: int) -> None:
        super().__init__()
        if image_size > 64:
            # ImageNet-sized inputs: 7x7/2 conv + 3x3/2 max-pool, as in the original design.
            self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False),
                                      nn.BatchNorm2d(widths[0]), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        else:
            # Small images (MNIST/CIFAR): a single 3x3 conv keeps the resolution.
            self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages, channels = [], widths[0]
        for index, (count, width) in enumerate(zip(blocks, widths)):
            for block in range(count):
                stride = 2 if index > 0 and block == 0 else 1
                stages.append(BasicBlock(channels, width, stride))
                channels = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))  # (B, num_classes)


@register("resnet")
class ResNet(Classifier):
    """Residual network; `preset` picks a layout or `blocks`/`widths` give one."""

    bench = BenchSpec(
        task="classification", accepts=("image",),
        metric="acc", metric_direction="max",
        # quick: 3 epochs, short of the target (val 0.946-0.964 at 3 on seeds 0-2, 0.97 needs 4-6): one epoch showed
        # 0.33 at about the same cost, the speed window then needing a fit of its own (issue 21).
        epochs={"smoke": 1, "quick": 3, "standard": 10, "full": 30},
        classic=SizePreset(datamodule="mnist5k", batch_size=128, metric_target=0.97,
                           smoke_model={"preset": None, "blocks": (1, 1), "widths": (4, 8)}),
        # ResNet-18 on ImageNet-sized images (7x7/2 stem + max-pool, four stages of 64-512 channels).
        large=SizePreset(model={"preset": "resnet18"},
                         data={"shape": (3, 224, 224), "num_classes": 1000, "num_samples": 4096}, batch_size=256,
                         # the same stem and four stages, narrow and one block each; 72 px still takes the 7x7 stem
                         smoke_model={"preset": None, "blocks": (1, 1, 1, 1), "widths": (4, 8, 8, 8)},
                         smoke_data={"shape": (3, 72, 72), "num_samples": 256}, smoke_batch_size=32),
    )

    def __init__(
        self,
        input_shape: tuple[int, ...] = (1, 28, 28),
        num_classes: int = 10,
        preset: str | None = "resnet8",
        blocks: tuple[int, ...] = (),
        widths: tuple[int, ...] = (),
        lr: float = 3e-3,
        weight_decay: float = 5e-4,
    ) -> None:
        super().__init__(num_classes, lr, weight_decay)
        self.save_hyperparameters()
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"unknown resnet preset {preset!r}; choose from {sorted(PRESETS)}")
            blocks, widths = PRESETS[preset]
        if not blocks or len(blocks) != len(widths):
            raise ValueError("resnet needs a preset or equal-length `blocks` and `widths`")
        self.net = ResNetBody(input_shape[0], max(input_shape[1:]), tuple(blocks), tuple(widths), num_classes)
