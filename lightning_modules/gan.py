"""gan: DCGAN-style generator and discriminator (Radford et al. 2016), trained with manual optimization.

Quality is measured on the features of a small CNN classifier trained on the same data when fitting starts
(the Inception network cannot be downloaded here): Frechet distance (FID) and Inception Score (IS).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from lightning_modules import register
from lightning_modules.base import BenchSpec


class Generator(nn.Module):
    """z (B, latent) -> Linear -> (width*2, H/4, W/4) -> 2 x ConvTranspose (x2 each) -> image in [0, 1]."""

    def __init__(self, latent_dim: int, shape: tuple[int, ...], width: int) -> None:
        super().__init__()
        channels, height, width_px = shape
        self.base = (width * 2, height // 4, width_px // 4)
        self.project = nn.Sequential(nn.Linear(latent_dim, width * 2 * self.base[1] * self.base[2]),
                                     nn.BatchNorm1d(width * 2 * self.base[1] * self.base[2]), nn.ReLU())
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(width * 2, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.upsample(self.project(z).view(-1, *self.base))
        return (x + 1) / 2  # tanh range -> the data's [0, 1] pixels


class Discriminator(nn.Module):
    """image in [0, 1] -> 2 x strided conv (LeakyReLU) -> real/fake logit. No dropout."""

    def __init__(self, shape: tuple[int, ...], width: int) -> None:
        super().__init__()
        channels, height, width_px = shape
        self.layers = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width * 2, 4, 2, 1), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(width * 2 * (height // 4) * (width_px // 4), 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images * 2 - 1).squeeze(1)  # (B,)


class FeatureClassifier(nn.Module):
    """Small CNN trained on the real data; `features` gives FID embeddings, `logits` IS class scores."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, width: int = 32, num_features: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(shape[0], width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(width * 2 * (shape[1] // 4) * (shape[2] // 4), num_features), nn.ReLU(),
        )
        self.head = nn.Linear(num_features, num_classes)
        self.num_features = num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images))


class _View(nn.Module):
    """Exposes one output of the classifier to torchmetrics (which calls `module(images)`)."""

    def __init__(self, classifier: FeatureClassifier, features: bool) -> None:
        super().__init__()
        self.classifier, self.features = [classifier], features  # list: not a second registered copy
        self.num_features = classifier.num_features if features else classifier.head.out_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        classifier = self.classifier[0]
        out = classifier.body(images.float()) if self.features else classifier(images.float())
        return out.double()  # double: IS takes logs of class probabilities that underflow in float32


@register("gan")
class GAN(L.LightningModule):
    """DCGAN with two optimizers; quality = FID on classifier features (lower is better), plus IS."""

    bench = BenchSpec(
        task="generation", accepts=("image",), default_datamodule="mnist5k",
        metric="fid", metric_direction="min", metric_target=150.0, default_batch_size=64,
        datamodule_kwargs={"normalize": False},  # pixels in [0, 1], the generator's range
        epochs={"smoke": 1, "quick": 2, "standard": 25, "full": 50},
        tiny={"latent_dim": 8, "width": 4, "classifier_epochs": 1},
    )

    def __init__(
        self,
        input_shape: tuple[int, ...] = (1, 28, 28),
        num_classes: int = 10,
        latent_dim: int = 64,
        width: int = 64,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        classifier_epochs: int = 3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        shape = tuple(input_shape)
        self.generator = Generator(latent_dim, shape, width)
        self.discriminator = Discriminator(shape, width)
        self.classifier = FeatureClassifier(shape, num_classes).requires_grad_(False)
        self.classifier_trained = False
        for stage in ("val", "test"):
            setattr(self, f"{stage}_fid", FrechetInceptionDistance(_View(self.classifier, True), normalize=True,
                                                                   input_img_size=shape))
        # normalize=False: with True, torchmetrics' IS multiplies images by 255 before calling the feature net.
        self.test_is = InceptionScore(_View(self.classifier, False), normalize=False, splits=5)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def example_input(self, batch_size: int) -> torch.Tensor:
        return torch.randn(batch_size, self.hparams.latent_dim, device=self.device)

    # ---------------------------------------------------------------- the feature classifier
    def on_fit_start(self) -> None:
        if not self.classifier_trained:
            self.train_feature_classifier(*self.trainer.datamodule.train_set.tensors)

    @torch.enable_grad()
    def train_feature_classifier(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """A few epochs of plain supervised training; frozen afterwards (it is a measuring instrument)."""
        classifier = self.classifier.requires_grad_(True).train()
        optimizer = torch.optim.Adam(classifier.parameters(), lr=2e-3)
        generator = torch.Generator().manual_seed(0)
        for _ in range(self.hparams.classifier_epochs):
            for index in torch.randperm(len(labels), generator=generator).split(128):
                x, y = images[index].to(self.device), labels[index].to(self.device)
                loss = F.cross_entropy(classifier(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        classifier.requires_grad_(False).eval()
        self.classifier_trained = True

    # ---------------------------------------------------------------- adversarial training
    def training_step(self, batch, batch_idx):
        real, _ = batch
        opt_g, opt_d = self.optimizers()
        z = torch.randn(real.shape[0], self.hparams.latent_dim, device=self.device)
        fake = self.generator(z)
        ones, zeros = torch.ones(real.shape[0], device=self.device), torch.zeros(real.shape[0], device=self.device)

        # Discriminator: real -> 1, fake -> 0 (the generator's output is detached here).
        d_loss = (F.binary_cross_entropy_with_logits(self.discriminator(real).float(), ones)
                  + F.binary_cross_entropy_with_logits(self.discriminator(fake.detach()).float(), zeros)) / 2
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()

        # Generator: non-saturating loss, make the discriminator call fakes real.
        g_loss = F.binary_cross_entropy_with_logits(self.discriminator(fake).float(), ones)
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()

        self.log_dict({"train/d_loss": d_loss, "train/g_loss": g_loss}, prog_bar=True)
        return g_loss + d_loss

    def configure_optimizers(self):
        betas = tuple(self.hparams.betas)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr, betas=betas)
        return [opt_g, opt_d]

    # ---------------------------------------------------------------- evaluation
    def _sample(self, n: int, generator: nn.Module | None = None) -> torch.Tensor:
        z = torch.randn(n, self.hparams.latent_dim, device=self.device)
        return (generator or self.generator)(z).float().clamp(0, 1)

    def validation_step(self, batch, batch_idx):
        real, _ = batch
        self.val_fid.update(real.float(), real=True)
        self.val_fid.update(self._sample(len(real)), real=False)

    def on_validation_epoch_end(self) -> None:
        self.log("val/fid", self.val_fid.compute(), prog_bar=True)
        self.val_fid.reset()

    def on_test_start(self) -> None:
        # Reference points: the same FID against an untrained generator, and IS of the real test images.
        self.untrained = [Generator(self.hparams.latent_dim, tuple(self.hparams.input_shape),
                                    self.hparams.width).to(self.device).eval()]
        self.fid_untrained = FrechetInceptionDistance(_View(self.classifier, True), normalize=True,
                                                      input_img_size=tuple(self.hparams.input_shape)).to(self.device)
        self.is_real = InceptionScore(_View(self.classifier, False), normalize=False, splits=5).to(self.device)

    def test_step(self, batch, batch_idx):
        real, _ = batch
        real = real.float()
        fake = self._sample(len(real))
        self.test_fid.update(real, real=True)
        self.test_fid.update(fake, real=False)
        self.test_is.update(fake)
        self.fid_untrained.update(real, real=True)
        self.fid_untrained.update(self._sample(len(real), self.untrained[0]), real=False)
        self.is_real.update(real)

    def on_test_epoch_end(self) -> None:
        self.log("test/fid", self.test_fid.compute())
        self.log("test/is", self.test_is.compute()[0])
        self.log("test/fid_untrained", self.fid_untrained.compute())
        self.log("test/is_real", self.is_real.compute()[0])
        for metric in (self.test_fid, self.test_is, self.fid_untrained, self.is_real):
            metric.reset()

    def save_artifacts(self, out_dir: Path) -> list[Path]:
        from torchvision.utils import save_image

        generator = torch.Generator(device=self.device).manual_seed(0)
        z = torch.randn(64, self.hparams.latent_dim, device=self.device, generator=generator)
        was_training = self.generator.training
        self.generator.eval()
        with torch.no_grad():
            samples = self.generator(z).float()
        self.generator.train(was_training)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "gan_samples.png"
        save_image(samples, path, nrow=8, padding=2)
        return [path]
