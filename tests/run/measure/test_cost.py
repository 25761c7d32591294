"""FLOPs against independent references: torch's FLOP counter run by hand over one real training step of every
registered model (no Lightning, no analytic counts: the unfused CPU kernels instead), fvcore for the forward."""

import contextlib
import math

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import datamodules
import lightning_modules
from bench.core.config import RunConfig
from bench.run import session
from bench.run.measure import cost
from bench.run.measure.steps import batch_size_of

MODELS = ("mlp", "cnn", "resnet", "autoencoder", "capsnet", "rnn", "lstm", "attention", "transformer", "gan", "dbn",
          "dqn")


def smoke_config(name: str, **overrides) -> RunConfig:
    return RunConfig(model=name, datamodule=lightning_modules.get(name).bench.classic.datamodule, profile="smoke",
                     **overrides)


def counted_in_a_fit(config: RunConfig, tmp_path) -> cost.Tally:
    """What the runner records: the TrainingFlops callback in a fit shaped like the speed window's."""
    built = session.build(config)
    flops = cost.TrainingFlops()
    trainer = session.make_trainer(config, built, [flops], None, tmp_path, max_epochs=-1, max_steps=1,
                                   limit_val_batches=0, limit_train_batches=1.0)
    trainer.fit(built.model, built.datamodule)
    assert flops.per_sample is not None, flops.note()
    return flops.per_sample


class StubTrainer:
    """Just what the models' training steps read from their trainer, as in the speed window's fit (no epoch bound:
    the DBN pre-trains its first RBM)."""

    def __init__(self, datamodule) -> None:
        self.datamodule, self.max_epochs, self.current_epoch, self.global_step = datamodule, -1, 0, 0
        self.estimated_stepping_batches, self.num_training_batches = math.inf, math.inf
        self.gradient_clip_val = None


def reference_flops(config: RunConfig) -> float:
    """FlopCounterMode around training_step, backward and optimizer step, called by hand on one real batch: the
    SDPA math kernels and oneDNN off so the counter sees every matmul (attention, LSTM) itself."""
    built = session.build(config)
    model, datamodule = built.model, built.datamodule
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    model._trainer = StubTrainer(datamodule)
    configured = model.configure_optimizers()
    optimizers = configured[0] if isinstance(configured, tuple) else configured
    optimizers = [optimizers.get("optimizer", optimizers) if isinstance(optimizers, dict) else optimizers]
    optimizers = optimizers[0] if isinstance(optimizers[0], list) else optimizers
    model.log = model.log_dict = lambda *args, **kwargs: None
    model.optimizers = lambda: optimizers if len(optimizers) > 1 else optimizers[0]
    model.lr_schedulers = lambda: torch.optim.lr_scheduler.LambdaLR(optimizers[-1], lambda step: 1.0)
    model.manual_backward = lambda loss, *args, **kwargs: loss.backward()
    model.train()
    with sdpa_kernel(SDPBackend.MATH), torch.backends.mkldnn.flags(enabled=False), \
            FlopCounterMode(display=False) as counter:
        loss = model.training_step(batch, 0)
        if model.automatic_optimization:
            loss.backward()
            optimizers[0].step()
    return counter.get_total_flops() / batch_size_of(batch)


@pytest.mark.parametrize("name", MODELS)
def test_training_flops_are_those_of_one_real_training_step(name, tmp_path):
    counted = counted_in_a_fit(smoke_config(name), tmp_path)
    reference = reference_flops(smoke_config(name))
    assert counted.flops == pytest.approx(reference, rel=0.05)


def test_transformer_flops_are_the_same_in_every_precision(tmp_path):
    fp32 = counted_in_a_fit(smoke_config("transformer"), tmp_path / "fp32")
    bf16 = counted_in_a_fit(smoke_config("transformer", precision="bf16-mixed"), tmp_path / "bf16")
    assert bf16 == fp32
    model = session.build(smoke_config("transformer")).model
    args = model.example_input(4)
    counts = {precision: cost.inference_flops_per_sample(model, args, autocast)
              for precision, autocast in (("32-true", contextlib.nullcontext()),
                                          ("bf16-mixed", torch.autocast("cpu", dtype=torch.bfloat16)))}
    assert counts["32-true"] == counts["bf16-mixed"] and counts["32-true"].flops > 0


def test_the_transformers_inference_count_sees_through_its_fast_path():
    model = session.build(RunConfig(model="transformer", datamodule="seq2seq")).model.eval()
    args = model.example_input(4)
    with torch.no_grad(), FlopCounterMode(display=False) as fast:
        model(*args)  # eval + no_grad: nn.TransformerEncoderLayer's fused fast path, invisible to the counter
    counted = cost.inference_flops_per_sample(model, args, contextlib.nullcontext())
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as plain:
        model.train()  # no fast path; no dropout in this model, so the same matmuls
        model(*args)
    assert counted.flops == pytest.approx(plain.get_total_flops() / 4, rel=1e-6)
    assert counted.flops > 1.3 * fast.get_total_flops() / 4


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet", "autoencoder", "capsnet"])
def test_forward_flops_agree_with_fvcore(name):
    fvcore = pytest.importorskip("fvcore.nn")
    model = session.build(RunConfig(model=name, datamodule=lightning_modules.get(name).bench.classic.datamodule))
    model = model.model.eval()
    args = (model.example_input(2),)
    counted = cost.inference_flops_per_sample(model, args, contextlib.nullcontext())
    analysis = fvcore.FlopCountAnalysis(model, args).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    # fvcore counts multiply-adds (one per FMA) over the batch
    assert counted.flops == pytest.approx(2 * analysis.total() / len(args[0]), rel=0.015)


def test_cudnn_share_names_convolutions_and_recurrent_layers():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 10))
    tally = cost.inference_flops_per_sample(conv, (torch.randn(2, 3, 8, 8),), contextlib.nullcontext())
    assert tally.cudnn_flops == 2 * 8 * 3 * 9 * 36 and 0.5 < tally.cudnn_share < 1
    lstm = torch.nn.LSTM(4, 8, batch_first=True)  # oneDNN's fused kernel on a CPU: counted analytically
    tally = cost.inference_flops_per_sample(lstm, (torch.randn(2, 5, 4),), contextlib.nullcontext())
    assert tally.flops == tally.cudnn_flops == 5 * 2 * 4 * 8 * (4 + 8)


def recurrent_step_counts(layer: torch.nn.RNNBase, x: torch.Tensor, device_flags) -> tuple[float, float]:
    """(ours with the fused kernel, the counter's own with the unfused kernels) over a forward and backward."""
    with cost.FlopCount(layer) as ours:
        layer(x)[0].sum().backward()
    with device_flags(enabled=False), FlopCounterMode(display=False) as plain:
        layer(x)[0].sum().backward()
    return ours.tally.flops, plain.get_total_flops()


@pytest.mark.parametrize("bidirectional, input_grad", [(False, False), (True, True)])
def test_analytic_recurrent_training_flops_match_the_unfused_kernels(bidirectional, input_grad):
    lstm = torch.nn.LSTM(12, 16, num_layers=2, batch_first=True, bidirectional=bidirectional)
    x = torch.randn(3, 7, 12, requires_grad=input_grad)
    ours, plain = recurrent_step_counts(lstm, x, torch.backends.mkldnn.flags)  # oneDNN's LSTM: blind
    assert ours == pytest.approx(plain, rel=1e-9)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_cudnn_recurrent_training_flops_match_the_unfused_kernels(mode):
    layer = getattr(torch.nn, mode)(12, 16, num_layers=2, batch_first=True, bidirectional=True).cuda()
    x = torch.randn(3, 7, 12, device="cuda", requires_grad=True)
    ours, plain = recurrent_step_counts(layer, x, torch.backends.cudnn.flags)
    assert ours == pytest.approx(plain, rel=0.02)


@pytest.mark.slow  # 12 runs plus their CPU counts (out of the 90 s GPU tier)
@pytest.mark.gpu
@pytest.mark.parametrize("name", MODELS)
def test_mfu_is_at_most_one_on_a_gpu(name, tmp_path):
    from bench.results.io import flatten
    from bench.run.child import run

    row = flatten(run(smoke_config(name, device="cuda"), tmp_path))
    assert row["status"] == "ok", row["message"]
    assert 0 < row["mfu"] <= 1, (row["mfu"], row["peak_dtype"], row["peak_tflops"])
    assert row["flops_per_sample"] == pytest.approx(counted_in_a_fit(smoke_config(name), tmp_path / "cpu").flops,
                                                    rel=0.05)  # the same count on the GPU as on the CPU


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["rnn", "lstm", "attention", "dqn"])
def test_clipping_models_train_in_16_mixed_on_a_gpu(name, tmp_path):
    from bench.results.io import flatten
    from bench.run.child import run

    row = flatten(run(smoke_config(name, device="cuda", precision="16-mixed"), tmp_path))
    assert row["status"] == "ok", row["message"]
    assert row["train_samples_per_s"] > 0


@pytest.mark.parametrize("name, gates", [("lstm", 4), ("rnn", 1)])
def test_recurrent_flops_are_counted_analytically(name, gates):
    model = lightning_modules.build_model(lightning_modules.get(name), datamodules.get("seq_mnist5k")())
    steps, features, hidden, classes = 28, 28, model.hparams.hidden_size, 10
    analytic = steps * 2 * gates * hidden * (features + hidden) + 2 * hidden * classes
    counted = cost.inference_flops_per_sample(model, (model.example_input(4),), contextlib.nullcontext()).flops
    assert counted == pytest.approx(analytic, rel=0.05)
