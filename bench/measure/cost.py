"""Cost: parameters, FLOPs per sample, achieved TFLOP/s and MFU against the device's peak."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.measure import Columns
from bench.measure.peaks import Peak
from bench.measure.steps import batch_size_of


@dataclass(frozen=True)
class Cost(Columns):
    flops_per_sample: float | None = None
    achieved_tflops: float | None = None
    peak_tflops: float | None = None
    peak_dtype: str | None = None
    peak_source: str | None = None
    mfu: float | None = None



GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def recurrent_flops(module: torch.nn.RNNBase, inputs: torch.Tensor) -> float:
    """Matmul FLOPs of one call of a recurrent layer stack, counted the way the FLOP counter counts a Linear.

    Per time step, layer and direction: 2 * gates * hidden * (layer input + hidden state) for the input and
    recurrent matmuls (+ 2 * hidden * proj_size for an LSTM projection); biases and gate nonlinearities are not
    counted (nor are they for any other layer).
    """
    if not torch.is_tensor(inputs):  # a PackedSequence: its data is (sum of lengths, features)
        steps_x_batch = inputs.data.shape[0]
    else:
        steps_x_batch = inputs.shape[0] * inputs.shape[1] if inputs.dim() == 3 else inputs.shape[0]
    directions = 2 if module.bidirectional else 1
    state = module.proj_size or module.hidden_size
    per_step = 0
    for layer in range(module.num_layers):
        layer_input = module.input_size if layer == 0 else state * directions
        per_step += 2 * GATES[module.mode] * module.hidden_size * (layer_input + state)
        if module.proj_size:
            per_step += 2 * module.hidden_size * module.proj_size
    return float(per_step * directions * steps_x_batch)


def forward_flops_per_sample(model: torch.nn.Module, args: tuple) -> float | None:
    """FLOPs of one forward pass per sample: torch.utils.flop_counter, plus analytic counts where it is blind.

    The counter does not see inside cuDNN's / oneDNN's fused RNN, LSTM and GRU kernels: a recurrent layer whose
    counted FLOPs fall short of its analytic count gets the difference added.
    """
    from torch.utils.flop_counter import FlopCounterMode

    analytic: dict[str, float] = {}
    hooks = [module.register_forward_pre_hook(
        lambda mod, inputs, name=name: analytic.__setitem__(name, analytic.get(name, 0.0)
                                                           + recurrent_flops(mod, inputs[0])))
        for name, module in model.named_modules() if isinstance(module, torch.nn.RNNBase)]
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*args)
    finally:
        for hook in hooks:
            hook.remove()
    counts = counter.get_flop_counts()
    total = float(counter.get_total_flops())
    for name, flops in analytic.items():
        counted = sum(counts.get(f"{type(model).__name__}.{name}", {}).values())
        total += max(0.0, flops - counted)
    return total / batch_size_of(args) if total else None


def cost(forward_flops: float | None, train_samples_per_s: float | None, peak: Peak) -> Cost:
    """Training FLOPs = 3 x forward (backward is about twice the forward); achieved and MFU where measurable."""
    flops = 3 * forward_flops if forward_flops else None
    achieved = flops * train_samples_per_s / 1e12 if flops and train_samples_per_s else None
    mfu = achieved / peak.tflops if achieved and peak.tflops else None
    return Cost(flops, achieved, peak.tflops, peak.dtype, peak.source or None, mfu)
