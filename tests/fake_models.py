"""A tiny model for runner tests, loaded by import path; `mode` injects each failure the runner must record."""

import dataclasses
import time

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from datamodules.synthetic import Synthetic
from lightning_modules import BenchSpec
from lightning_modules.sizes import SizePreset


class FakeNet(L.LightningModule):
    """Linear classifier on 8x8 synthetic images; mode in ok | nan | oom | sleep | crash | steady (each training
    step sleeps STEP_SLEEP_S: a build whose steps cost a known time; a subclass is a slower build) | hang_in_int8 (its
    forward hangs once the int8 inference backend stands in for its network); a batch larger than `oom_above` (when
    set) runs out of memory, as a real model does past what fits."""

    STEP_SLEEP_S = 0.02

    bench = BenchSpec(
        task="classification", accepts=("image",),
        metric="acc", metric_direction="max",
        epochs={"smoke": 1, "quick": 1, "standard": 1, "full": 1},
        classic=SizePreset(datamodule="synthetic", data={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 64},
                           batch_size=16, metric_target=0.5),
    )

    def __init__(self, input_shape=(1, 8, 8), num_classes=3, mode="ok", oom_above=0):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x):
        if self.hparams.mode == "hang_in_int8" and "quantized" in type(self.net[-1]).__module__:
            time.sleep(600)
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        mode = self.hparams.mode
        if self.hparams.oom_above and len(x) > self.hparams.oom_above:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory at batch {len(x)} (injected)")
        if mode == "nan":
            loss = loss * float("nan")
        elif mode == "oom":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        elif mode == "sleep":
            time.sleep(120)
        elif mode == "steady":
            time.sleep(self.STEP_SLEEP_S)
        elif mode == "crash":
            raise RuntimeError("boom: injected crash")
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/acc", (self(x).argmax(-1) == y).float().mean())

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test/acc", (self(x).argmax(-1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def example_input(self, batch_size):
        return torch.randn(batch_size, *self.hparams.input_shape, device=self.device)


class NotAModule:
    """Has a `bench` spec but is no LightningModule: planning must refuse it."""

    bench = FakeNet.bench


class ScoredSynthetic(Synthetic):
    """Synthetic data whose metric counts (for ClimbingNet's made-up quality: runs then fill the quality cells)."""

    has_quality = True


class ClimbingNet(FakeNet):
    """FakeNet whose validation accuracy climbs 0.2 per epoch trained (0.2, 0.4, 0.6, ...): its target 0.5 is reached
    at the third validation of six epochs. Its test accuracy is the same function of the epochs trained, so a row's
    metric_value says where training stopped (0.6 at the target; 1.0 after all six)."""

    bench = BenchSpec(
        task="classification", accepts=("image",),
        metric="acc", metric_direction="max",
        epochs={"smoke": 6, "quick": 6, "standard": 6, "full": 6},
        classic=SizePreset(datamodule="tests.fake_models:ScoredSynthetic",
                           data={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 64}, batch_size=16,
                           metric_target=0.5),
    )

    def __init__(self, input_shape=(1, 8, 8), num_classes=3, mode="ok", oom_above=0):
        super().__init__(input_shape, num_classes, mode, oom_above)
        self.epochs_trained = 0  # validation at an epoch's end comes before on_train_epoch_end

    def on_train_epoch_end(self):
        self.epochs_trained += 1

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", min(1.0, 0.2 * (self.epochs_trained + 1)))

    def test_step(self, batch, batch_idx):
        self.log("test/acc", min(1.0, 0.2 * self.epochs_trained))


class TwoOptimizerNet(ClimbingNet):
    """ClimbingNet trained as a GAN is: manual optimization, two optimizers stepped each batch (Lightning's
    global_step then counts two a batch)."""

    def __init__(self, input_shape=(1, 8, 8), num_classes=3, mode="ok", oom_above=0):
        super().__init__(input_shape, num_classes, mode, oom_above)
        self.automatic_optimization = False
        self.head = nn.Linear(num_classes, num_classes)

    def training_step(self, batch, batch_idx):
        x, y = batch
        for optimizer, output in zip(self.optimizers(), (self(x), self.head(self(x).detach())), strict=True):
            loss = F.cross_entropy(output, y)
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
        return loss

    def configure_optimizers(self):
        return [torch.optim.SGD(self.net.parameters(), lr=0.1), torch.optim.SGD(self.head.parameters(), lr=0.1)]


class NoFullEpochsNet(FakeNet):
    """FakeNet whose spec names epochs for some profiles only: planning refuses it in one line."""

    bench = dataclasses.replace(FakeNet.bench, epochs={"smoke": 1, "quick": 1, "standard": 1})
