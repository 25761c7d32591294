"""attention: a recurrent encoder with additive (Bahdanau) attention pooling feeding a classifier."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lightning_modules import register
from lightning_modules.base import BenchSpec, Classifier, SizePreset


class AdditiveAttentionPool(nn.Module):
    """score_t = v . tanh(W h_t + b); weights = softmax over t; context = sum_t weights_t h_t."""

    def __init__(self, features: int, attention_size: int) -> None:
        super().__init__()
        self.project = nn.Linear(features, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.score(torch.tanh(self.project(states))).squeeze(-1)  # (B, T)
        weights = torch.softmax(scores.float(), dim=-1).to(states.dtype)  # (B, T), sums to 1 over T
        context = torch.einsum("bt,btf->bf", weights, states)  # (B, F)
        return context, weights


class AttentionNet(nn.Module):
    """Bidirectional GRU over (B, T, F) -> attention pooling -> linear logits; keeps the last weights."""

    def __init__(self, input_size: int, hidden_size: int, attention_size: int, num_classes: int) -> None:
        super().__init__()
        self.encoder = nn.GRU(input_size, hidden_size, batch_first=True, bidirectional=True)
        self.pool = AdditiveAttentionPool(2 * hidden_size, attention_size)
        self.head = nn.Linear(2 * hidden_size, num_classes)
        self.last_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.encoder(x)  # (B, T, 2*hidden)
        context, weights = self.pool(states)
        self.last_weights = weights.detach()
        return self.head(context)


@register("attention")
class Attention(Classifier):
    """Attention network: recurrent encoder + additive attention pooling; `attention_weights(x)` exposes (B, T)."""

    bench = BenchSpec(
        task="classification", accepts=("sequence",),
        metric="acc", metric_direction="max",
        # Caps: quality runs stop at the target. Seeds 0-4 reach val 0.94 by epoch 4 of a 5-epoch one-cycle (4
        # epochs: four of five) (issue 21).
        epochs={"smoke": 1, "quick": 5, "standard": 8, "full": 20},
        classic=SizePreset(datamodule="seq_mnist5k", batch_size=64, metric_target=0.94,
                           smoke_model={"hidden_size": 8, "attention_size": 8}),
        # A wide encoder (bidirectional GRU, 2 x 1024 features per step) under the same additive attention pooling.
        large=SizePreset(model={"hidden_size": 1024, "attention_size": 1024},
                         data={"shape": (128, 512), "num_classes": 1000, "num_samples": 4096}, batch_size=512,
                         smoke_model={"hidden_size": 16, "attention_size": 16},
                         smoke_data={"shape": (8, 12), "num_samples": 256}, smoke_batch_size=32),
    )

    def __init__(
        self,
        input_shape: tuple[int, ...] = (28, 28),
        num_classes: int = 10,
        hidden_size: int = 64,
        attention_size: int = 64,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        grad_clip: float = 1.0,
    ) -> None:
        super().__init__(num_classes, lr, weight_decay, grad_clip)
        self.save_hyperparameters()
        self.net = AttentionNet(input_shape[-1], hidden_size, attention_size, num_classes)

    @torch.no_grad()
    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        self.net(x)
        return self.net.last_weights  # (B, T)

    def save_artifacts(self, out_dir: Path) -> list[Path]:
        """Draw a few test sequences (as images) beside the attention each time step received."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        datamodule = self.trainer.datamodule
        x, y = datamodule.split_tensors("test")
        x, y = x[:6].to(self.device), y[:6]
        was_training = self.training
        self.eval()
        weights = self.attention_weights(x).float().cpu()
        preds = self(x).argmax(-1).cpu()
        self.train(was_training)
        fig, axes = plt.subplots(2, len(x), figsize=(2 * len(x), 4), gridspec_kw={"height_ratios": [3, 1]})
        for i in range(len(x)):
            axes[0, i].imshow(x[i].float().cpu(), cmap="gray", aspect="auto")
            axes[0, i].set_title(f"label {y[i].item()} / pred {preds[i].item()}", fontsize=8)
            axes[0, i].axis("off")
            axes[1, i].bar(range(weights.shape[1]), weights[i])
            axes[1, i].set_xlabel("time step (row)", fontsize=7)
            axes[1, i].tick_params(labelsize=6)
        fig.suptitle("attention over time steps")
        fig.tight_layout()
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "attention_map.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return [path]
