"""transformer: an encoder-decoder Transformer for sequence-to-sequence tasks (Vaswani et al. 2017)."""

from __future__ import annotations

import functools
import math

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from lightning_modules import register
from lightning_modules.base import BenchSpec, SizePreset, adamw_one_cycle


class SinusoidalPositions(nn.Module):
    """Adds the fixed sine/cosine position code to (B, T, d_model) embeddings."""

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency)
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[: x.shape[1]]


class Seq2SeqTransformer(nn.Module):
    """Token embeddings + positions -> nn.Transformer (causal decoder mask) -> vocabulary logits.

    Every attention of nn.Transformer runs through F.scaled_dot_product_attention (fused flash / memory-efficient
    kernels on a GPU): nn.MultiheadAttention calls it whenever no attention weights are asked for, and the causal
    decoder mask reaches it as `is_causal=True` rather than as a mask tensor.
    """

    def __init__(self, vocab_size: int, seq_len: int, d_model: int, heads: int, layers: int, ff: int,
                 dropout: float, norm_first: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.positions = SinusoidalPositions(d_model, seq_len + 1)
        # norm_first: pre-LayerNorm blocks (GPT-2 style), which keep deep / wide stacks trainable without tuning.
        self.transformer = nn.Transformer(d_model, heads, layers, layers, ff, dropout, batch_first=True,
                                          norm_first=norm_first)
        self.out = nn.Linear(d_model, vocab_size)
        self.scale = math.sqrt(d_model)

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.positions(self.embed(tokens) * self.scale)

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        return self.transformer.encoder(self.embed_tokens(src))  # (B, T_src, d_model): the decoder's memory

    def decode(self, memory: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        # Causal mask: decoder position t attends to positions <= t only.
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], device=tgt_in.device)
        hidden = self.transformer.decoder(self.embed_tokens(tgt_in), memory, tgt_mask=causal, tgt_is_causal=True)
        return self.out(hidden)  # (B, T_tgt, vocab)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(src), tgt_in)  # what nn.Transformer.forward does, in its two halves


@register("transformer")
class Transformer(L.LightningModule):
    """Encoder-decoder Transformer trained with teacher forcing; evaluated by greedy decoding."""

    bench = BenchSpec(
        task="seq2seq", accepts=("seq2seq",),
        metric="exact_match", metric_direction="max",
        epochs={"smoke": 1, "quick": 6, "standard": 25, "full": 50},
        # lr 3e-3 (constructor default 1e-3): quick (cap 6) reaches exact match 0.95 at epoch 5 on seeds 0-4 (1e-3:
        # 0.17-0.18 at 6), standard (cap 25) at epochs 8-12 (results/reference/cpu-2core/README.md).
        classic=SizePreset(model={"lr": 3e-3}, datamodule="seq2seq", batch_size=128, metric_target=0.95,
                           smoke_model={"d_model": 16, "heads": 2, "layers": 1, "ff": 32}),
        # GPT-2-small width (768-d, 12 heads, 3072-d feed-forward; 6 encoder + 6 decoder layers), pre-LayerNorm,
        # on 64-token sequences; the one-cycle schedule's first 30 % warms the learning rate up.
        large=SizePreset(model={"d_model": 768, "heads": 12, "layers": 6, "ff": 3072, "norm_first": True,
                                "lr": 3e-4},
                         datamodule="seq2seq", data={"length": 64, "num_train": 65536, "num_val": 1024,
                                                     "num_test": 1024}, batch_size=256,
                         smoke_model={"d_model": 16, "heads": 2, "layers": 2, "ff": 32},
                         smoke_data={"length": 8, "num_train": 512, "num_val": 64, "num_test": 64},
                         smoke_batch_size=32),
        other_metric_directions={"token_acc": "max", "loss": "min"},
    )

    def __init__(
        self,
        vocab_size: int = 11,
        seq_len: int = 8,
        bos_token: int = 10,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        ff: int = 128,
        dropout: float = 0.0,
        norm_first: bool = False,  # True: pre-LayerNorm (the large size); False: the original post-LN design
        lr: float = 1e-3,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = Seq2SeqTransformer(vocab_size, seq_len, d_model, heads, layers, ff, dropout, norm_first)
        for stage in ("val", "test"):
            setattr(self, f"{stage}_token_acc", torchmetrics.Accuracy(task="multiclass", num_classes=vocab_size))
            setattr(self, f"{stage}_exact_match", torchmetrics.MeanMetric())

    def decoder_input(self, tgt: torch.Tensor) -> torch.Tensor:
        # Teacher forcing: BOS followed by the target shifted right by one.
        bos = torch.full_like(tgt[:, :1], self.hparams.bos_token)
        return torch.cat([bos, tgt[:, :-1]], dim=1)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.net(src, tgt_in)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Feed back the argmax token one position at a time; returns (B, length) tokens.

        A network that offers only its forward (src, tgt_in) -> logits, as a deployment backend standing in for
        `net` does (an exported graph, an ONNX session), is called whole at each step: the same tokens, with the
        source encoded again each time."""
        length = length or self.hparams.seq_len
        tokens = torch.full_like(src[:, :1], self.hparams.bos_token)
        if isinstance(self.net, Seq2SeqTransformer):
            memory = self.net.encode(src)  # once: the source does not change while the target grows
            logits_of = functools.partial(self.net.decode, memory)
        else:
            logits_of = functools.partial(self.net, src)
        for _ in range(length):
            next_token = logits_of(tokens)[:, -1].argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, next_token], dim=1)
        return tokens[:, 1:]

    def training_step(self, batch, batch_idx):
        src, tgt = batch
        logits = self(src, self.decoder_input(tgt))
        loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten())
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch, stage: str) -> None:
        src, tgt = batch
        decoded = self.greedy_decode(src, tgt.shape[1])
        token_acc, exact = getattr(self, f"{stage}_token_acc"), getattr(self, f"{stage}_exact_match")
        token_acc(decoded.flatten(), tgt.flatten())
        exact((decoded == tgt).all(dim=1).float())
        self.log(f"{stage}/token_acc", token_acc)
        self.log(f"{stage}/exact_match", exact, prog_bar=True)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.hparams.lr, self.hparams.weight_decay)

    def example_input(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (batch_size, self.hparams.seq_len)
        src = torch.randint(0, self.hparams.vocab_size - 1, shape, device=self.device)
        return src, self.decoder_input(torch.randint(0, self.hparams.vocab_size - 1, shape, device=self.device))
