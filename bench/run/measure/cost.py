"""Cost: FLOPs of one real training step and of the timed inference forward, per sample; achieved TFLOP/s and MFU.

What is counted (results/README.md, "FLOPs"): torch.utils.flop_counter's formulas (matmuls, convolutions,
attention; 2 FLOPs per multiply-add; no elementwise work, normalisation or optimizer arithmetic), over whatever the
step runs (forward, backward, every network a manual-optimization model trains), plus analytic counts for the
recurrent layers whose fused kernels the counter cannot see, and the CPU flash-attention kernels it has no formula
for. Attention is counted in full, causal or not, as torch's attention formulas do.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from bench.core.row import Columns
from bench.run.measure.peaks import Peak
from bench.run.measure.steps import batch_size_of


@dataclass(frozen=True)
class Cost(Columns):
    flops_per_sample: float | None = None
    achieved_tflops: float | None = None
    infer_flops_per_sample: float | None = None
    infer_achieved_tflops: float | None = None
    peak_tflops: float | None = None
    peak_dtype: str | None = None
    peak_source: str | None = None
    mfu: float | None = None


GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _steps_and_sequences(inputs: Any, batch_first: bool) -> tuple[int, int]:
    """(time steps x sequences, sequences) of a recurrent layer's input: padded (B, T, F) / (T, B, F), unbatched
    (T, F), or a PackedSequence (whose data is (sum of lengths, F))."""
    if not torch.is_tensor(inputs):
        return int(inputs.data.shape[0]), int(inputs.batch_sizes[0])
    if inputs.dim() == 2:
        return int(inputs.shape[0]), 1
    return int(inputs.shape[0] * inputs.shape[1]), int(inputs.shape[0] if batch_first else inputs.shape[1])


def _layer_widths(module: torch.nn.RNNBase) -> list[tuple[int, int]]:
    """(layer input, recurrent state) widths of each layer."""
    directions = 2 if module.bidirectional else 1
    state = module.proj_size or module.hidden_size
    return [(module.input_size if layer == 0 else state * directions, state) for layer in range(module.num_layers)]


def recurrent_flops(module: torch.nn.RNNBase, inputs: Any) -> float:
    """Matmul FLOPs of one call of a recurrent layer stack, counted the way the FLOP counter counts a Linear.

    Per time step, layer and direction: 2 * gates * hidden * (layer input + hidden state) for the input and
    recurrent matmuls (+ 2 * hidden * proj_size for an LSTM projection); biases and gate nonlinearities are not
    counted (nor are they for any other layer).
    """
    steps_x_batch, _ = _steps_and_sequences(inputs, module.batch_first)
    directions = 2 if module.bidirectional else 1
    per_step = sum(2 * GATES[module.mode] * module.hidden_size * (width + state) for width, state in
                   _layer_widths(module))
    per_step += 2 * module.hidden_size * module.proj_size * module.num_layers if module.proj_size else 0
    return float(per_step * directions * steps_x_batch)


def recurrent_backward_flops(module: torch.nn.RNNBase, inputs: Any, input_needs_grad: bool) -> float:
    """Matmul FLOPs of the backward of one such call, as autograd runs it for the unfused layers: the weight
    gradients (as many FLOPs as the forward), the recurrent state's gradient at every step but the first (whose
    initial state needs none) and the layer input's gradient (the first layer's only when its input needs one)."""
    steps_x_batch, sequences = _steps_and_sequences(inputs, module.batch_first)
    directions, gates = (2 if module.bidirectional else 1), GATES[module.mode]
    inputs_grad = 0
    for layer, (width, state) in enumerate(_layer_widths(module)):
        hidden_grad = 2 * gates * module.hidden_size * state * (steps_x_batch - sequences)
        input_grad = 2 * gates * module.hidden_size * width * steps_x_batch if layer or input_needs_grad else 0
        inputs_grad += hidden_grad + input_grad
    return recurrent_flops(module, inputs) + float(inputs_grad * directions)


@dataclass(frozen=True)
class Tally:
    """FLOPs counted over some work, and the part of them that ran in cuDNN's kernels (convolutions, recurrent
    layers), whose fp32 may use TF32 by cuDNN's own switch rather than the matmul precision."""

    flops: float
    cudnn_flops: float

    @property
    def cudnn_share(self) -> float:
        return self.cudnn_flops / self.flops if self.flops else 0.0


def _sdpa_formulas() -> dict:
    """The CPU flash-attention kernels (what F.scaled_dot_product_attention runs on a CPU) have no formula in torch's
    registry: they get those of the GPU flash kernels, which take the same arguments first."""
    aten = torch.ops.aten
    pairs = {"_scaled_dot_product_flash_attention_for_cpu": aten._scaled_dot_product_flash_attention,
             "_scaled_dot_product_flash_attention_for_cpu_backward": aten._scaled_dot_product_flash_attention_backward}
    return {getattr(aten, cpu): flop_registry[gpu] for cpu, gpu in pairs.items()
            if hasattr(aten, cpu) and gpu in flop_registry and getattr(aten, cpu) not in flop_registry}


class _Counter(FlopCounterMode):
    """torch's FLOP counter that never breaks the work it counts: a formula that raises is recorded, and the op
    still runs."""

    def __init__(self) -> None:
        super().__init__(display=False)
        self.flop_registry.update(_sdpa_formulas())
        self.failure: str | None = None

    def _count_flops(self, func_packet, out, args, kwargs):
        try:
            return super()._count_flops(func_packet, out, args, kwargs)
        except Exception as exc:
            self.failure = self.failure or f"{func_packet}: {exc}".splitlines()[0]
            return out


class FlopCount:
    """Counts the FLOPs of what runs inside it, on `model`'s recurrent layers analytically where the counter is blind.

    A recurrent call whose matmuls the counter did not see (cuDNN's and oneDNN's fused kernels) gets its analytic
    forward count, and, when its output needs a gradient, that of its backward; where the counter saw them (the
    unfused CPU kernels), its own count stands. Usable as a context manager or with start() / stop().
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.counter = _Counter()
        self.analytic = 0.0
        self.tally: Tally | None = None  # set on leaving the context
        self._hooks: list = []
        self._open: list[tuple[float, Any]] = []

    def start(self) -> FlopCount:
        for module in self.model.modules():
            if isinstance(module, torch.nn.RNNBase):
                self._hooks += [module.register_forward_pre_hook(self._before),
                                module.register_forward_hook(self._after)]
        try:
            self.counter.__enter__()
        except BaseException:
            self._remove_hooks()
            raise
        return self

    def _before(self, module, args) -> None:
        self._open.append((self.counter.get_total_flops(), args[0] if args else None))

    def _after(self, module, args, output) -> None:
        seen_before, inputs = self._open.pop()
        if inputs is None:
            return
        forward = recurrent_flops(module, inputs)
        if self.counter.get_total_flops() - seen_before >= forward / 2:
            return  # the counter saw this call's matmuls
        self.analytic += forward
        first = output[0] if isinstance(output, tuple) else output
        first = first if torch.is_tensor(first) else first.data  # a PackedSequence
        if torch.is_grad_enabled() and first.requires_grad:
            data = inputs if torch.is_tensor(inputs) else inputs.data
            self.analytic += recurrent_backward_flops(module, inputs, data.requires_grad)

    def _remove_hooks(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def stop(self) -> Tally:
        """End counting; the tally (raises when a formula failed: a partial count is no count)."""
        try:
            self.counter.__exit__(None, None, None)
        finally:
            self._remove_hooks()
        if self.counter.failure:
            raise RuntimeError(f"FLOP formula failed for {self.counter.failure}")
        by_op = self.counter.get_flop_counts().get("Global", {})
        convolutions = sum(flops for op, flops in by_op.items() if "conv" in str(op))
        return Tally(float(sum(by_op.values())) + self.analytic, float(convolutions) + self.analytic)

    def __enter__(self) -> FlopCount:
        return self.start()

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.tally = self.stop()
            return
        with contextlib.suppress(Exception):  # counting is abandoned with the work
            self.counter.__exit__(*exc)
        self._remove_hooks()


class TrainingFlops(L.Callback):
    """Counts one real training step of the fit it joins: everything between Lightning's batch start and batch end of
    training step `step` (forward, backward and optimizer step; every network and sampling pass a manual-optimization
    module runs), in the fit's precision, on its device and batch. Step 1 unless the module is compiled: the first
    step compiles. Best effort: a failure leaves `per_sample` None and says why in `failure`."""

    def __init__(self, step: int = 1) -> None:
        self.step = step
        self.batches = 0
        self.per_sample: Tally | None = None
        self.failure: str | None = None
        self._count: FlopCount | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches += 1
        if self.batches != self.step:
            return
        try:
            self._count = FlopCount(pl_module).start()
        except Exception as exc:
            self.failure = f"FLOP count failed: {exc}".splitlines()[0]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._count is None:
            return
        count, self._count = self._count, None
        try:
            tally = count.stop()
        except Exception as exc:
            self.failure = f"FLOP count failed: {exc}".splitlines()[0]
            return
        samples = batch_size_of(batch)
        self.per_sample = Tally(tally.flops / samples, tally.cudnn_flops / samples) if tally.flops else None

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self._count is not None:  # the step failed while counted: leave no counter behind
            self._count.__exit__(type(exception), exception, None)
            self._count = None

    def note(self) -> str | None:
        """Why the row has no training FLOPs, if it has none."""
        if self.per_sample is not None:
            return None
        return self.failure or f"FLOPs not counted: the fit ended before training step {self.step}"


def inference_flops_per_sample(model: torch.nn.Module, args: tuple, autocast) -> Tally | None:
    """FLOPs of the eval-mode forward the inference timing runs (no_grad, the run's autocast), per sample.

    The fused fast paths of nn.TransformerEncoderLayer / nn.MultiheadAttention, which that forward takes in fp32
    and which the counter cannot see into, are switched off while counting: they do the same matmuls, and so the
    count is the same in every precision (autocast switches them off anyway).
    """
    mha = getattr(torch.backends, "mha", None)
    fast_path = mha.get_fastpath_enabled() if mha is not None else None
    model.eval()
    try:
        if mha is not None:
            mha.set_fastpath_enabled(False)
        with torch.no_grad(), autocast, FlopCount(model) as count:
            model(*args)
    finally:
        if mha is not None:
            mha.set_fastpath_enabled(fast_path)
    tally, samples = count.tally, batch_size_of(args)
    return Tally(tally.flops / samples, tally.cudnn_flops / samples) if tally.flops else None  # type: ignore[union-attr]


def cost(train: Tally | None, train_samples_per_s: float | None, infer: Tally | None,
         infer_samples_per_s: float | None, peak: Peak) -> Cost:
    """Achieved TFLOP/s = FLOPs per sample x samples/s; MFU = the training one over the peak."""
    def tflops(tally, rate):
        return tally.flops * rate / 1e12 if tally and rate else None

    achieved = tflops(train, train_samples_per_s)
    mfu = achieved / peak.tflops if achieved and peak.tflops else None
    return Cost(train.flops if train else None, achieved, infer.flops if infer else None,
                tflops(infer, infer_samples_per_s), peak.tflops, peak.dtype, peak.source or None, mfu)
