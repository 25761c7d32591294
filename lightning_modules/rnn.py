"""rnn: an Elman RNN (tanh) over a sequence; its last hidden state feeds a linear classifier."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules import register
from lightning_modules.base import BenchSpec, Classifier, SizePreset

RECURRENT_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentNet(nn.Module):
    """Recurrent layers over (B, T, F) -> the last time step's top-layer output -> linear logits."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int, num_classes: int,
                 dropout: float) -> None:
        super().__init__()
        extra = {"nonlinearity": "tanh"} if cell == "rnn" else {}
        self.recurrent = RECURRENT_LAYERS[cell](input_size, hidden_size, num_layers, batch_first=True,
                                                dropout=dropout if num_layers > 1 else 0.0, **extra)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.recurrent(x)  # (B, T, hidden)
        return self.head(outputs[:, -1])  # (B, num_classes)


@register("rnn")
class RNN(Classifier):
    """Elman RNN sequence classifier with gradient-norm clipping."""

    cell = "rnn"
    bench = BenchSpec(
        task="classification", accepts=("sequence",),
        metric="acc", metric_direction="max",
        # Caps: quality runs stop at the target. Seeds 0-4 reach val 0.88 at epochs 9-11 of a 15-epoch one-cycle; a
        # shorter cycle does not (8 epochs: one of five; lr 5e-3 over 10: two), so quick runs the same 15 (epochs
        # are cheap: about 0.6 s on 2 cores) (issue 21).
        epochs={"smoke": 1, "quick": 15, "standard": 15, "full": 30},
        classic=SizePreset(datamodule="seq_mnist5k", batch_size=64, metric_target=0.88,
                           smoke_model={"hidden_size": 8, "num_layers": 1}),
        # Four stacked 2048-wide layers over 128 steps: each step's recurrent matmul is (512 x 2048) x (2048 x 2048).
        large=SizePreset(model={"hidden_size": 2048, "num_layers": 4},
                         data={"shape": (128, 512), "num_classes": 1000, "num_samples": 4096}, batch_size=512,
                         smoke_model={"hidden_size": 16, "num_layers": 2},
                         smoke_data={"shape": (8, 12), "num_samples": 256}, smoke_batch_size=32),
    )

    def __init__(
        self,
        input_shape: tuple[int, ...] = (28, 28),
        num_classes: int = 10,
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        grad_clip: float = 1.0,
    ) -> None:
        super().__init__(num_classes, lr, weight_decay, grad_clip)
        self.save_hyperparameters()
        self.net = RecurrentNet(self.cell, input_shape[-1], hidden_size, num_layers, num_classes, dropout)
