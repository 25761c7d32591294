"""autoencoder: encoder -> latent code -> decoder, dense (the classic design) or convolutional."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from lightning_modules import register
from lightning_modules.base import BenchSpec, SizePreset, adamw_one_cycle


def dense_autoencoder(input_shape: tuple[int, ...], hidden: int, latent: int,
                      channels: tuple[int, ...] = ()) -> tuple[nn.Module, nn.Module]:
    features = math.prod(input_shape)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, latent))
    decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, features), nn.Sigmoid(),
                            nn.Unflatten(1, tuple(input_shape)))
    return encoder, decoder


def conv_autoencoder(input_shape: tuple[int, ...], hidden: int, latent: int,
                     channels: tuple[int, ...] = (32, 64)) -> tuple[nn.Module, nn.Module]:
    """One stride-2 3x3 conv per entry of `channels` (each halves H, W), a linear code, and the mirror image."""
    in_channels, height, width = input_shape
    small = (height, width)
    for _ in channels:
        small = ((small[0] + 1) // 2, (small[1] + 1) // 2)  # a stride-2 conv with padding 1 rounds up
    widths = (in_channels, *channels)
    down: list[nn.Module] = []
    for before, after in zip(widths[:-1], widths[1:]):
        down += [nn.Conv2d(before, after, 3, 2, 1), nn.ReLU()]
    encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(channels[-1] * small[0] * small[1], latent))
    up: list[nn.Module] = [nn.Linear(latent, channels[-1] * small[0] * small[1]), nn.ReLU(),
                           nn.Unflatten(1, (channels[-1], *small))]
    for before, after in zip(widths[:1:-1], widths[-2:0:-1]):  # deepest first, down to channels[0]
        up += [nn.ConvTranspose2d(before, after, 3, 2, 1, output_padding=1), nn.ReLU()]
    decoder = nn.Sequential(
        *up, nn.ConvTranspose2d(channels[0], in_channels, 3, 2, 1, output_padding=1),
        nn.Upsample(size=(height, width)), nn.Sigmoid(),
    )
    return encoder, decoder


VARIANTS = {"dense": dense_autoencoder, "conv": conv_autoencoder}


class AutoencoderNet(nn.Module):
    def __init__(self, variant: str, input_shape: tuple[int, ...], hidden: int, latent: int,
                 channels: tuple[int, ...]) -> None:
        super().__init__()
        self.encoder, self.decoder = VARIANTS[variant](input_shape, hidden, latent, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))  # (B, C, H, W) in [0, 1]


@register("autoencoder")
class Autoencoder(L.LightningModule):
    """Reconstruction autoencoder on [0, 1] pixels; quality = test MSE (also PSNR and SSIM)."""

    bench = BenchSpec(
        task="reconstruction", accepts=("image",),
        metric="mse", metric_direction="min",
        # Caps: quality runs stop at the target. At lr 5e-3 (a 10-epoch one-cycle) seeds 0-4 reach val MSE 0.02 at
        # epoch 5, at the default 2e-3 (an 8-epoch cycle) two of five (issue 21).
        epochs={"smoke": 1, "quick": 10, "standard": 10, "full": 60},
        classic=SizePreset(model={"lr": 5e-3}, datamodule="mnist5k", data={"normalize": False}, batch_size=64,
                           metric_target=0.02, smoke_model={"hidden": 16, "latent": 4}),
        # A convolutional autoencoder on 128x128 colour images: four stride-2 convs (64-512 channels), a 512-d code.
        large=SizePreset(model={"variant": "conv", "channels": (64, 128, 256, 512), "latent": 512},
                         data={"shape": (3, 128, 128), "num_classes": 10, "num_samples": 4096}, batch_size=256,
                         smoke_model={"channels": (4, 8, 8, 8), "latent": 8},
                         smoke_data={"shape": (3, 32, 32), "num_samples": 256}, smoke_batch_size=32),
        other_metric_directions={"psnr": "max", "ssim": "max"},
    )

    def __init__(
        self,
        input_shape: tuple[int, ...] = (1, 28, 28),
        variant: str = "dense",
        hidden: int = 256,
        latent: int = 64,
        channels: tuple[int, ...] = (32, 64),  # the conv variant's feature maps, one stride-2 conv each
        lr: float = 2e-3,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown autoencoder variant {variant!r}; choose from {sorted(VARIANTS)}")
        self.save_hyperparameters()
        self.net = AutoencoderNet(variant, tuple(input_shape), hidden, latent, tuple(channels))
        for stage in ("val", "test"):
            setattr(self, f"{stage}_mse", torchmetrics.MeanSquaredError())
        self.test_psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.test_ssim = StructuralSimilarityIndexMeasure(data_range=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, _ = batch
        loss = F.mse_loss(self(x), x)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, _ = batch
        self.val_mse(self(x).float(), x)
        self.log("val/mse", self.val_mse, prog_bar=True)

    def test_step(self, batch, batch_idx):
        x, _ = batch
        reconstruction = self(x).float()
        for name in ("mse", "psnr", "ssim"):
            metric = getattr(self, f"test_{name}")
            metric(reconstruction, x)
            self.log(f"test/{name}", metric)

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.hparams.lr, self.hparams.weight_decay)

    def example_input(self, batch_size: int) -> torch.Tensor:
        return torch.rand(batch_size, *self.hparams.input_shape, device=self.device)

    def save_artifacts(self, out_dir: Path) -> list[Path]:
        """Top row: test inputs; bottom row: their reconstructions."""
        from torchvision.utils import save_image

        x = self.trainer.datamodule.split_tensors("test")[0][:16].to(self.device)
        with torch.no_grad():
            reconstruction = self(x).float()
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "reconstructions.png"
        save_image(torch.cat([x.float(), reconstruction]), path, nrow=16, padding=2)
        return [path]
