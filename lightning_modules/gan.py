"""gan: DCGAN-style generator and discriminator (Radford et al. 2016), trained with manual optimization.

Class-conditional by default (`conditional=True`): the generator gets a one-hot label next to z and the
discriminator scores (image, label) pairs with a projection head (Miyato & Koyama 2018). On the 4,000 training
digits of mnist5k and a CPU budget of minutes, the unconditional DCGAN covers the classes unevenly (seed 0,
25 epochs: the digit 1 in 2% of samples, 9 in 24%) and its Inception Score stays near 5; conditioning fixes the
class balance. Samples for FID/IS use class-balanced labels. `conditional=False` gives the plain DCGAN.

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
from lightning_modules.base import BenchSpec, SizePreset, cache_dir, fingerprint, fused_on_gpu, load_or_train


class Generator(nn.Module):
    """[z, one-hot label] -> Linear -> (width*2^(stages-1), H/2^stages, W/2^stages) -> `stages` x ConvTranspose
    (each doubles H, W and halves the channels) -> image in [0, 1]. stages=4 at 64x64 is the DCGAN paper's."""

    def __init__(self, latent_dim: int, shape: tuple[int, ...], width: int, num_classes: int = 0,
                 stages: int = 2) -> None:
        super().__init__()
        channels, height, width_px = shape
        self.num_classes = num_classes  # 0: unconditional
        self.base = (width * 2 ** (stages - 1), height // 2**stages, width_px // 2**stages)
        features = self.base[0] * self.base[1] * self.base[2]
        self.project = nn.Sequential(nn.Linear(latent_dim + num_classes, features), nn.BatchNorm1d(features),
                                     nn.ReLU())
        layers: list[nn.Module] = []
        for stage in range(stages - 1, 0, -1):  # (width*2^stage) -> (width*2^(stage-1)) channels
            layers += [nn.ConvTranspose2d(width * 2**stage, width * 2 ** (stage - 1), 4, 2, 1),
                       nn.BatchNorm2d(width * 2 ** (stage - 1)), nn.ReLU()]
        self.upsample = nn.Sequential(*layers, nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)
        x = self.upsample(self.project(z).view(-1, *self.base))
        return (x + 1) / 2  # tanh range -> the data's [0, 1] pixels


class Discriminator(nn.Module):
    """image in [0, 1] -> `stages` x strided conv (LeakyReLU) -> real/fake logit (+ label projection). No dropout."""

    def __init__(self, shape: tuple[int, ...], width: int, num_classes: int = 0, stages: int = 2) -> None:
        super().__init__()
        channels, height, width_px = shape
        num_features = width * 2 ** (stages - 1) * (height // 2**stages) * (width_px // 2**stages)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        for stage in range(1, stages):  # (width*2^(stage-1)) -> (width*2^stage) channels, half the size
            layers += [nn.Conv2d(width * 2 ** (stage - 1), width * 2**stage, 4, 2, 1),
                       nn.BatchNorm2d(width * 2**stage), nn.LeakyReLU(0.2)]
        self.layers = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(num_features, 1)
        # Projection discriminator: the label's embedding dotted with the features adds to the logit.
        self.label_embedding = nn.Embedding(num_classes, num_features) if num_classes else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        features = self.layers(images * 2 - 1)
        logit = self.head(features).squeeze(1)  # (B,)
        if self.label_embedding is not None:
            logit = logit + (self.label_embedding(labels) * features).sum(1)
        return logit


CLASSIFIER_TRAINING = {"lr": 2e-3, "batch_size": 128, "seed": 0}  # the feature classifier's Adam schedule


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
        task="generation", accepts=("image",),
        metric="fid", metric_direction="min",
        # standard: seed 0 reached IS 7.5 after 25 epochs and was still climbing; 35 leaves a margin over 7.
        epochs={"smoke": 1, "quick": 2, "standard": 35, "full": 60},
        # pixels in [0, 1], the generator's range
        classic=SizePreset(datamodule="mnist5k", data={"normalize": False}, batch_size=64, metric_target=150.0,
                           smoke_model={"latent_dim": 8, "width": 4, "classifier_epochs": 1}),
        # DCGAN at 64x64 colour: 4 up/down-sampling stages, 64 to 512 feature maps, a 100-d latent code.
        large=SizePreset(model={"latent_dim": 100, "width": 64, "stages": 4, "classifier_epochs": 1},
                         data={"shape": (3, 64, 64), "num_classes": 10, "num_samples": 4096}, batch_size=256,
                         smoke_model={"latent_dim": 8, "width": 4},
                         smoke_data={"shape": (3, 32, 32), "num_samples": 256}, smoke_batch_size=32),
        # is_real and fid_untrained describe the data and the untrained generator (references), not this model.
        other_metric_directions={"is": "max"},
    )

    def __init__(
        self,
        input_shape: tuple[int, ...] = (1, 28, 28),
        num_classes: int = 10,
        latent_dim: int = 64,
        width: int = 64,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        classifier_epochs: int = 10,
        conditional: bool = True,
        stages: int = 2,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        shape = tuple(input_shape)
        label_classes = num_classes if conditional else 0
        self.generator = Generator(latent_dim, shape, width, label_classes, stages)
        self.discriminator = Discriminator(shape, width, label_classes, stages)
        self.classifier = FeatureClassifier(shape, num_classes).requires_grad_(False)
        self.classifier_trained = False
        for stage in ("val", "test"):
            setattr(self, f"{stage}_fid", FrechetInceptionDistance(_View(self.classifier, True), normalize=True,
                                                                   input_img_size=shape))
        # normalize=False: with True, torchmetrics' IS multiplies images by 255 before calling the feature net.
        self.test_is = InceptionScore(_View(self.classifier, False), normalize=False, splits=5)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images for latent codes z; without labels (conditional model) a class-balanced cycle 0, 1, 2, ..."""
        if labels is None and self.hparams.conditional:
            labels = self.balanced_labels(len(z))
        return self.generator(z, labels)

    def balanced_labels(self, n: int) -> torch.Tensor:
        return torch.arange(n, device=self.device) % self.hparams.num_classes

    def example_input(self, batch_size: int) -> torch.Tensor:
        return torch.randn(batch_size, self.hparams.latent_dim, device=self.device)

    # ---------------------------------------------------------------- the feature classifier
    def on_fit_start(self) -> None:
        if not self.classifier_trained:
            self.prepare_feature_classifier(*self.trainer.datamodule.split_tensors("train"))

    def prepare_feature_classifier(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """The classifier trained from these initial weights on exactly these images with these settings on this
        kind of device: loaded when an earlier run trained it (it is an instrument, like FID's Inception weights,
        not part of this model's training: 15 s of the quick profile's 19 on a 2-core CPU), else trained and kept
        (lightning_modules.base.cache_dir()). Loaded or trained, the weights are the same."""
        key = fingerprint(images, labels, self.classifier, *self.classifier.state_dict().values(),
                          self.hparams.classifier_epochs, CLASSIFIER_TRAINING, torch.__version__, self.device.type)
        load_or_train(self.classifier, cache_dir() / f"gan-feature-classifier-{key}.pt",
                      lambda: self.train_feature_classifier(images, labels))
        self.classifier.requires_grad_(False).eval()  # load_state_dict copies into the parameters where they are
        self.classifier_trained = True

    @torch.enable_grad()
    def train_feature_classifier(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """A few epochs of plain supervised training; frozen afterwards (it is a measuring instrument)."""
        classifier = self.classifier.requires_grad_(True).train()
        optimizer = torch.optim.Adam(classifier.parameters(), lr=CLASSIFIER_TRAINING["lr"])
        generator = torch.Generator().manual_seed(CLASSIFIER_TRAINING["seed"])
        for _ in range(self.hparams.classifier_epochs):
            for index in torch.randperm(len(labels), generator=generator).split(CLASSIFIER_TRAINING["batch_size"]):
                x, y = images[index].to(self.device), labels[index].to(self.device)
                loss = F.cross_entropy(classifier(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        classifier.requires_grad_(False).eval()
        self.classifier_trained = True

    # ---------------------------------------------------------------- adversarial training
    def training_step(self, batch, batch_idx):
        real, labels = batch
        labels = labels if self.hparams.conditional else None
        opt_g, opt_d = self.optimizers()
        z = torch.randn(real.shape[0], self.hparams.latent_dim, device=self.device)
        fake = self.generator(z, labels)  # fakes carry the batch's labels: same class mix as the data
        ones, zeros = torch.ones(real.shape[0], device=self.device), torch.zeros(real.shape[0], device=self.device)

        # Discriminator: real -> 1, fake -> 0 (the generator's output is detached here).
        d_loss = (F.binary_cross_entropy_with_logits(self.discriminator(real, labels).float(), ones)
                  + F.binary_cross_entropy_with_logits(self.discriminator(fake.detach(), labels).float(), zeros)) / 2
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()

        # Generator: non-saturating loss, make the discriminator call fakes real.
        g_loss = F.binary_cross_entropy_with_logits(self.discriminator(fake, labels).float(), ones)
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()

        self.log_dict({"train/d_loss": d_loss, "train/g_loss": g_loss}, prog_bar=True)
        return g_loss + d_loss

    def configure_optimizers(self):
        betas = tuple(self.hparams.betas)
        generator, discriminator = list(self.generator.parameters()), list(self.discriminator.parameters())
        opt_g = torch.optim.Adam(generator, lr=self.hparams.lr, betas=betas, **fused_on_gpu(generator))
        opt_d = torch.optim.Adam(discriminator, lr=self.hparams.lr, betas=betas, **fused_on_gpu(discriminator))
        return [opt_g, opt_d]

    # ---------------------------------------------------------------- evaluation
    def _sample(self, n: int, generator: nn.Module | None = None) -> torch.Tensor:
        z = torch.randn(n, self.hparams.latent_dim, device=self.device)
        labels = self.balanced_labels(n) if self.hparams.conditional else None
        return (generator or self.generator)(z, labels).float().clamp(0, 1)

    def validation_step(self, batch, batch_idx):
        real, _ = batch
        self.val_fid.update(real.float(), real=True)
        self.val_fid.update(self._sample(len(real)), real=False)

    def on_validation_epoch_end(self) -> None:
        self.log("val/fid", self.val_fid.compute(), prog_bar=True)
        self.val_fid.reset()

    def on_test_start(self) -> None:
        # Reference points: the same FID against an untrained generator, and IS of the real test images.
        self.untrained = [Generator(self.hparams.latent_dim, tuple(self.hparams.input_shape), self.hparams.width,
                                    self.generator.num_classes, self.hparams.stages).to(self.device).eval()]
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
        z = torch.randn(80, self.hparams.latent_dim, device=self.device, generator=generator)
        was_training = self.generator.training
        self.generator.eval()
        with torch.no_grad():
            samples = self(z).float()  # conditional: column c holds class c
        self.generator.train(was_training)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "gan_samples.png"
        save_image(samples, path, nrow=self.hparams.num_classes if self.hparams.conditional else 8, padding=2)
        return [path]
