"""lstm: an LSTM over a sequence; its last hidden state feeds a linear classifier."""

from __future__ import annotations

from lightning_modules import register
from lightning_modules.base import BenchSpec
from lightning_modules.rnn import RNN


@register("lstm")
class LSTM(RNN):
    """LSTM sequence classifier (same body as `rnn`, gated cell)."""

    cell = "lstm"
    bench = BenchSpec(
        task="classification", accepts=("sequence",), default_datamodule="seq_mnist5k",
        metric="acc", metric_direction="max", metric_target=0.94, default_batch_size=64,
        epochs={"smoke": 1, "quick": 1, "standard": 10, "full": 30},
        tiny={"hidden_size": 8, "num_layers": 1},
    )
