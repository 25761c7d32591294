"""dbn: deep belief network (Hinton, Osindero & Teh 2006): greedy RBM pre-training, then fine-tuning.

Epochs run in phases: `pretrain_epochs` per RBM, bottom-up, with contrastive divergence (CD-k, or persistent
CD), then supervised fine-tuning of the stack (sigmoid MLP sharing the RBM weights) with a softmax head.
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from lightning_modules import register
from lightning_modules.base import BenchSpec, SizePreset, fused_on_gpu


class RBM(nn.Module):
    """Bernoulli-Bernoulli restricted Boltzmann machine."""

    def __init__(self, visible: int, hidden: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(0.01 * torch.randn(hidden, visible))
        self.visible_bias = nn.Parameter(torch.zeros(visible))
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(v, self.weight, self.hidden_bias))

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(h, self.weight.t(), self.visible_bias))

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -v.b_v - sum_j softplus(W_j v + b_h,j); p(v) is proportional to exp(-F(v))."""
        return -(v @ self.visible_bias) - F.softplus(F.linear(v, self.weight, self.hidden_bias)).sum(-1)

    def gibbs_chain(self, v: torch.Tensor, k: int) -> torch.Tensor:
        """k steps of block Gibbs sampling v -> h -> v, starting from v; returns the last visible sample."""
        for _ in range(k):
            h = torch.bernoulli(self.hidden_probs(v))
            v = torch.bernoulli(self.visible_probs(h))
        return v

    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.visible_probs(self.hidden_probs(v)), v)


def contrastive_divergence_loss(rbm: RBM, v_data: torch.Tensor, v_model: torch.Tensor) -> torch.Tensor:
    # Its gradient is the CD estimate of -d log p / d theta: positive phase minus negative (chain) phase.
    return rbm.free_energy(v_data).mean() - rbm.free_energy(v_model.detach()).mean()


@register("dbn")
class DBN(L.LightningModule):
    """Stack of RBMs pre-trained greedily with CD-k, then fine-tuned as a classifier (manual optimization)."""

    bench = BenchSpec(
        task="classification", accepts=("image",),
        metric="acc", metric_direction="max",
        # Caps: quality runs stop at the target. At fine-tuning lr 1e-2, 7 epochs (one per RBM, then fine-tuning)
        # bring seeds 0-4 to val 0.90 at epoch 4 (at 3e-3: four of five by epoch 7); 20 (five per RBM) at epoch
        # 11-12, the first fine-tuning epochs (issue 21).
        epochs={"smoke": 1, "quick": 7, "standard": 20, "full": 40},
        # pixels in [0, 1] are the visible units' probabilities
        classic=SizePreset(model={"finetune_lr": 1e-2}, datamodule="mnist5k", data={"normalize": False}, batch_size=64,
                           metric_target=0.90, smoke_model={"hidden_sizes": (16, 8)}),
        # Three 4096-unit RBMs over 64x64 inputs: each Gibbs step is a (4096 x 4096) matmul per sample.
        large=SizePreset(model={"hidden_sizes": (4096, 4096, 4096)},
                         data={"shape": (1, 64, 64), "num_classes": 10, "num_samples": 16384}, batch_size=2048,
                         smoke_model={"hidden_sizes": (16, 16, 16)},
                         smoke_data={"shape": (1, 8, 8), "num_samples": 256}, smoke_batch_size=32),
    )

    def __init__(
        self,
        input_shape: tuple[int, ...] = (1, 28, 28),
        num_classes: int = 10,
        hidden_sizes: tuple[int, ...] = (256, 256),
        cd_k: int = 1,
        persistent: bool = False,
        pretrain_epochs: int = 5,
        pretrain_lr: float = 0.05,
        finetune_lr: float = 3e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        sizes = [math.prod(input_shape)] + list(hidden_sizes)
        self.rbms = nn.ModuleList(RBM(v, h) for v, h in zip(sizes[:-1], sizes[1:]))
        self.head = nn.Linear(sizes[-1], num_classes)
        self.chains: list[torch.Tensor | None] = [None] * len(self.rbms)  # persistent CD fantasy particles
        self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.test_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The fine-tuned stack: each RBM's hidden probabilities feed the next; logits (B, num_classes)."""
        h = x.flatten(1)
        for rbm in self.rbms:
            h = rbm.hidden_probs(h)
        return self.head(h)

    def epochs_per_rbm(self) -> int:
        """Pre-training epochs per RBM: `pretrain_epochs`, cut so a bounded run keeps time to fine-tune."""
        n, wanted = len(self.rbms), self.hparams.pretrain_epochs
        max_epochs = self.trainer.max_epochs
        if max_epochs is None or max_epochs < 0:  # unbounded run
            return wanted
        # At most half the run pre-trains (but one epoch per RBM where that still leaves one to fine-tune).
        return min(wanted, max(max_epochs // (2 * n), min(1, (max_epochs - 1) // n)))

    def phase(self) -> int:
        """Index of the RBM being pre-trained this epoch, or len(rbms) once fine-tuning."""
        per_rbm = self.epochs_per_rbm()
        return min(self.current_epoch // per_rbm, len(self.rbms)) if per_rbm > 0 else len(self.rbms)

    def training_step(self, batch, batch_idx):
        x, y = batch
        optimizers = self.optimizers()
        layer = self.phase()
        if layer < len(self.rbms):
            return self.pretrain_step(layer, x.flatten(1), optimizers[layer])
        logits = self(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizers[-1].zero_grad()
        self.manual_backward(loss)
        optimizers[-1].step()
        self.lr_schedulers().step()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def pretrain_step(self, layer: int, v: torch.Tensor, optimizer) -> torch.Tensor:
        with torch.no_grad():  # the input to RBM `layer` is the (fixed) lower stack's hidden probabilities
            for rbm in self.rbms[:layer]:
                v = rbm.hidden_probs(v)
            v = v.float()
        rbm = self.rbms[layer]
        with torch.no_grad():
            start = v  # CD-k: chains start at the data
            chains = self.chains[layer]
            if self.hparams.persistent:  # PCD: chains continue where the last batch left them
                if chains is None or chains.shape[1:] != v.shape[1:] or len(chains) < len(v):
                    chains = torch.bernoulli(v)
                start = chains[: len(v)]  # a smaller (last) batch advances only the first chains
            v_model = rbm.gibbs_chain(start, self.hparams.cd_k)
            if self.hparams.persistent:
                self.chains[layer] = torch.cat([v_model.float(), chains[len(v):]])
        loss = contrastive_divergence_loss(rbm, v, v_model)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        error = rbm.reconstruction_error(v).detach()
        self.log(f"train/rbm{layer}_recon", error, prog_bar=True)
        self.log(f"train/rbm{layer}_free_energy_gap", loss.detach())
        return error

    def _evaluate(self, batch, accuracy, stage: str) -> None:
        x, y = batch
        accuracy(self(x), y)
        self.log(f"{stage}/acc", accuracy, prog_bar=True)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_acc, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_acc, "test")

    def finetune_lr_factor(self, step: int) -> float:
        """Cosine decay over the fine-tuning steps of a bounded run; constant otherwise."""
        max_epochs, batches = self.trainer.max_epochs, self.trainer.num_training_batches
        if max_epochs is None or max_epochs < 0 or not math.isfinite(batches):
            return 1.0
        total = max((max_epochs - len(self.rbms) * self.epochs_per_rbm()) * batches, 1)
        return 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0)))

    def configure_optimizers(self):
        # One SGD-with-momentum optimizer per RBM (CD updates), one Adam for fine-tuning the whole stack.
        pretrain = [torch.optim.SGD(list(rbm.parameters()), lr=self.hparams.pretrain_lr, momentum=0.5,
                                    **fused_on_gpu(rbm.parameters())) for rbm in self.rbms]
        finetune = torch.optim.Adam(self.parameters(), lr=self.hparams.finetune_lr, **fused_on_gpu(self.parameters()))
        # Stepped by hand in training_step (manual optimization), once per fine-tuning step.
        schedule = torch.optim.lr_scheduler.LambdaLR(finetune, lambda step: self.finetune_lr_factor(step))
        return [*pretrain, finetune], [schedule]

    def example_input(self, batch_size: int) -> torch.Tensor:
        return torch.rand(batch_size, *self.hparams.input_shape, device=self.device)
