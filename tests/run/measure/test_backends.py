"""bench/run/measure/backends.py: each inference backend stands in for the network, or says why it cannot."""

import pytest
import torch
from torch import nn

from bench.run.measure import backends
from tests.helpers import smoke_model

CPU = torch.device("cpu")


def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


@pytest.mark.parametrize("backend", ["eager", pytest.param("compile", marks=pytest.mark.integration),
                                     pytest.param("onnxruntime", marks=pytest.mark.integration), "int8"])
def test_each_backend_stands_in_for_the_network_at_any_batch_size(backend):
    net = tiny_net()
    built = backends.build(backend, net, (torch.randn(2, 1, 8, 8),), CPU, "32-true")
    for batch in (1, 5):
        x = torch.randn(batch, 1, 8, 8)
        with torch.no_grad():
            assert torch.allclose(built.module(x), net(x), atol=0.05 if backend == "int8" else 1e-5)
    assert (built.detail != "") == (backend != "eager")


@pytest.mark.integration
def test_onnxruntime_records_its_provider_and_int8_its_method():
    net, x = tiny_net(), (torch.randn(2, 1, 8, 8),)
    assert "CPUExecutionProvider" in backends.build("onnxruntime", net, x, CPU, "32-true").detail
    assert "torch.ao dynamic int8 (2 Linear layers" in backends.build("int8", net, x, CPU, "32-true").detail


@pytest.mark.integration
@pytest.mark.slow  # AOTInductor compiles C++: tens of seconds on 2 cores
def test_export_runs_an_aotinductor_package_with_a_dynamic_batch():
    net = tiny_net()
    built = backends.build("export", net, (torch.randn(2, 1, 8, 8),), CPU, "32-true")
    x = torch.randn(1, 1, 8, 8)
    assert torch.allclose(built.module(x), net(x), atol=1e-5) and built.export_s > 0 and built.compile_s > 0


@pytest.mark.parametrize("backend, net, precision, reason", [
    ("int8", nn.Sequential(nn.Conv2d(1, 2, 3)), "32-true", "no Linear/LSTM/GRU layer"),
    ("export", tiny_net(), "bf16-mixed", "this run's precision is bf16-mixed"),
    ("onnxruntime", tiny_net(), "16-mixed", "this run's precision is 16-mixed"),
])
def test_a_backend_that_cannot_take_a_network_says_why(backend, net, precision, reason):
    with pytest.raises(backends.Unsupported, match=reason):
        backends.build(backend, net, (torch.randn(2, 1, 8, 8),), CPU, precision)


class BakedBatch(nn.Module):
    """A network whose graph keeps the example's batch (as the conditional GAN's label cycle does)."""

    def forward(self, x):
        return x.reshape(2, -1)[: len(x)] * 2  # export specialises the batch to the example's 2


@pytest.mark.integration
def test_an_export_that_bakes_in_the_batch_is_unsupported_with_the_reason():
    with pytest.raises(backends.Unsupported, match="does not run at another batch size|another output shape"):
        backends.build("onnxruntime", BakedBatch(), (torch.randn(2, 3),), CPU, "32-true")


@pytest.mark.integration
@pytest.mark.slow  # the dynamo exporter on a transformer: ~15 s on 2 cores
def test_onnx_takes_a_decoder_at_any_token_length():
    model = smoke_model("transformer").eval()
    built = backends.build("onnxruntime", model.net, model.example_input(2), CPU, "32-true")
    src, tgt = model.example_input(3)
    with torch.no_grad():
        assert torch.allclose(built.module(src, tgt[:, :2]), model.net(src, tgt[:, :2]), atol=1e-4)
    assert "dynamo exporter" in built.detail


def test_int8_leaves_the_fused_transformer_layers_in_float():
    model = smoke_model("transformer").eval()
    built = backends.build("int8", model.net, model.example_input(2), CPU, "32-true")
    with torch.no_grad():
        assert built.module(*model.example_input(3)).shape == model.net(*model.example_input(3)).shape


@pytest.mark.integration
@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["eager", pytest.param("compile", marks=pytest.mark.slow),  # compiles
                                     pytest.param("export", marks=pytest.mark.slow), "onnxruntime", "int8"])
def test_each_backend_on_a_gpu_runs_or_names_what_it_needs(backend):
    cuda = torch.device("cuda")
    net = tiny_net().to(cuda)
    try:
        built = backends.build(backend, net, (torch.randn(2, 1, 8, 8, device=cuda),), cuda, "32-true")
    except backends.Unsupported as exc:
        assert backend in ("onnxruntime", "int8") and ("onnxruntime-gpu" in str(exc) or "torchao" in str(exc))
        return
    x = torch.randn(3, 1, 8, 8, device=cuda)
    with torch.no_grad():
        out = built.module(x)
    assert out.device.type == "cuda" and torch.allclose(out, net(x), atol=0.05 if backend == "int8" else 1e-3)
    if backend == "onnxruntime":
        assert "CUDAExecutionProvider" in built.detail or "TensorrtExecutionProvider" in built.detail
