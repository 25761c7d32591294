"""Inference backends (step: the trained network -> the same network as a deployment backend runs it).

Each builder takes the network the model's forward goes through (its `net`, else the whole module), example inputs
and the device, and returns a `Built` backend: an `nn.Module` that stands in for the network (so the model's own
forward and test code run through it unchanged), what it is (`detail`: the ONNX Runtime provider, the quantizer)
and what preparing it cost (`export_s`, `compile_s`). A backend that cannot take a network raises `Unsupported`
with the reason; any other exception is the backend's error. Nothing here downloads anything.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from bench.run.supervisor import run_tmp

BACKENDS = ("eager", "compile", "export", "onnxruntime", "int8")  # `--infer-backends` takes these (bench/core/axes.py)
ONNX_OPSET = 18  # the dynamo exporter's lowest
EXPORTED_ONLY_IN = ("32-true",)  # autocast does not carry into an exported or quantized graph


class Unsupported(Exception):
    """This backend cannot take this network (the reason is the message): status `unsupported`, not an error."""


@dataclass
class Built:
    """A backend ready to call: `module` replaces the network; the times it took to prepare it."""

    module: nn.Module
    detail: str = ""
    export_s: float | None = None  # torch.export / the ONNX export / the quantizer's conversion
    compile_s: float | None = None  # AOTInductor's build and load / the ORT session / torch.compile's first call


class Calls(nn.Module):
    """A callable (an AOTInductor package, an ONNX Runtime session) as a parameter-free module."""

    def __init__(self, call: Callable[..., Any], keep: Any = None):
        super().__init__()
        self.call, self.keep = call, keep  # keep: what must live as long as the call (a temporary folder)

    def forward(self, *args: Any) -> Any:
        return self.call(*args)


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def tensors(args: tuple) -> tuple[torch.Tensor, ...]:
    if not all(torch.is_tensor(a) for a in args):
        raise Unsupported("its forward takes inputs other than tensors")
    return args


def eager(net: nn.Module, args: tuple, device: torch.device, precision: str) -> Built:
    return Built(net)


def compiled(net: nn.Module, args: tuple, device: torch.device, precision: str) -> Built:
    """torch.compile of the trained network for inference only (default mode); its first call compiles."""
    module = cast(nn.Module, torch.compile(net))  # an OptimizedModule
    with torch.no_grad():
        _, seconds = timed(lambda: module(*args))
    return Built(module, "torch.compile (default mode)", compile_s=seconds)


def dynamic_shapes(args: tuple) -> tuple:
    """The batch dimension of every input is dynamic, and so is the length of token inputs (a decoder is called
    with 1..T tokens); everything else keeps the example's size."""
    auto = torch.export.Dim.AUTO
    return tuple({0: auto, **({1: auto} if not a.is_floating_point() and a.dim() > 1 else {})} for a in args)


def exported(net: nn.Module, args: tuple, device: torch.device, precision: str) -> Built:
    """torch.export, then AOTInductor: the graph compiled into a package on disk, loaded back and called."""
    from torch._inductor import aoti_compile_and_package, aoti_load_package

    args = tensors(args)
    aoti_toolchain(device)
    program, export_s = timed(lambda: torch.export.export(net.eval(), args, dynamic_shapes=dynamic_shapes(args)))
    folder = tempfile.TemporaryDirectory(prefix="dnnbench-aoti-", dir=run_tmp())  # removed with the run
    path = str(Path(folder.name) / "model.pt2")

    def build():
        aoti_compile_and_package(program, package_path=path)
        return aoti_load_package(path)

    try:
        loaded, compile_s = timed(build)
    except OSError as exc:  # torch.utils.cpp_extension: no CUDA_HOME, no compiler, unwritable cache
        raise Unsupported(f"AOTInductor cannot build here ({one_line(exc)[:200]})") from None
    module = Calls(loaded, folder)
    check_other_batch(module, net, args, "the AOTInductor package")
    return Built(module, "torch.export + AOTInductor", export_s, compile_s)


def aoti_toolchain(device: torch.device) -> None:
    """Unsupported before the export where AOTInductor cannot build for `device`: on a GPU its package compiles
    against the CUDA toolkit's headers (torch.utils.cpp_extension's CUDA_HOME: $CUDA_HOME, nvcc's folder or
    /usr/local/cuda), which a host with only the driver and torch's wheels lacks."""
    from torch.utils import cpp_extension

    if device.type == "cuda" and cpp_extension.CUDA_HOME is None:
        raise Unsupported("AOTInductor on a GPU needs the CUDA toolkit (nvcc, or CUDA_HOME set to its folder)")


def onnx_providers(device: torch.device) -> list[str]:
    """TensorRT, then CUDA, then CPU on a GPU (those this ONNX Runtime build has); the CPU provider on a CPU."""
    import onnxruntime as ort

    wanted = (["TensorrtExecutionProvider", "CUDAExecutionProvider"] if device.type == "cuda" else [])
    available = ort.get_available_providers()
    chosen = [p for p in wanted if p in available]
    if device.type == "cuda" and not chosen:
        raise Unsupported("this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
    return chosen + ["CPUExecutionProvider"]


def onnx_export(net: nn.Module, args: tuple, path: str) -> str:
    """The dynamo exporter (torch.export underneath, the same dynamic dimensions as `export`: it keeps a decoder's
    token length dynamic, where the TorchScript exporter bakes sizes into reshapes); the TorchScript exporter
    (dynamo=False) where it fails. Returns which one wrote the file."""
    names = [f"input{i}" for i in range(len(args))]
    try:
        torch.onnx.export(net.eval(), args, path, input_names=names, output_names=["output"],
                          dynamic_shapes=dynamic_shapes(args), opset_version=ONNX_OPSET, dynamo=True)
        return "dynamo exporter"
    except Exception as exc:
        reason = one_line(exc)
    axes = {name: {dim: f"{name}_dim{dim}" for dim in dims} for name, dims in zip(names, dynamic_shapes(args))}
    axes["output"] = {0: "input0_dim0"}  # the batch
    torch.onnx.export(net.eval(), args, path, input_names=names, output_names=["output"], dynamic_axes=axes,
                      opset_version=ONNX_OPSET, dynamo=False)
    return f"TorchScript exporter (the dynamo exporter failed: {reason[:120]})"


def one_line(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]


def check_other_batch(module: nn.Module, net: nn.Module, args: tuple, what: str) -> None:
    """The backend at batch 1 (it was built at a larger one) gives the network's output shape, else Unsupported:
    an export that baked the example's batch into the graph cannot serve a batch-size curve."""
    single = tuple(a[:1] for a in args)
    try:
        with torch.no_grad():
            matches = module(*single).shape == net(*single).shape
    except Exception as exc:
        raise Unsupported(f"{what} does not run at another batch size than the example's ({one_line(exc)[:200]})"
                          ) from None
    if not matches:
        raise Unsupported(f"{what} gives another output shape at batch 1 than the network")


def onnxruntime(net: nn.Module, args: tuple, device: torch.device, precision: str) -> Built:
    """The network exported to ONNX and run by an ONNX Runtime session on this device (the provider is recorded).
    Inputs and outputs cross as host arrays (on a GPU the copies are part of each call)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise Unsupported("onnxruntime is not installed (pip install 'dnnbench[deploy]')") from None
    args = tensors(args)
    providers = onnx_providers(device)  # before the export: a CPU-only build on a GPU row is found out here
    folder = tempfile.TemporaryDirectory(prefix="dnnbench-onnx-", dir=run_tmp())  # removed with the run
    path = str(Path(folder.name) / "model.onnx")
    exporter, export_s = timed(lambda: onnx_export(net, args, path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the run's cores, as torch uses them
    session, compile_s = timed(lambda: ort.InferenceSession(path, options, providers=providers))
    names = [i.name for i in session.get_inputs()]

    def call(*inputs: torch.Tensor) -> torch.Tensor:
        feeds = {name: x.detach().cpu().numpy() for name, x in zip(names, inputs)}
        return torch.from_numpy(session.run(None, feeds)[0]).to(inputs[0].device)

    module = Calls(call, folder)
    check_other_batch(module, net, args, "the ONNX graph")
    return Built(module, f"onnxruntime {ort.__version__} {session.get_providers()[0]}, {exporter}", export_s,
                 compile_s)


QUANTIZABLE = (nn.Linear, nn.LSTM, nn.GRU)  # torch.ao dynamic quantization's CPU kernels


def int8(net: nn.Module, args: tuple, device: torch.device, precision: str) -> Built:
    """Post-training dynamic int8 quantization on a CPU (torch.ao: int8 weights, activations quantized per call)
    of the Linear/LSTM/GRU layers; convolutions and the rest stay fp32. GPUs: torchao int8 weight-only."""
    if device.type == "cuda":
        return int8_weight_only(net)

    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    layers = quantizable_layers(net)
    if not layers:
        raise Unsupported("no Linear/LSTM/GRU layer for dynamic int8 quantization (torch.ao's CPU method)")
    spec = {name: default_dynamic_qconfig for name in layers}
    module, export_s = timed(lambda: quantize_dynamic(copy.deepcopy(net).cpu().eval(), spec, dtype=torch.qint8))
    kinds = "/".join(sorted({type(m).__name__ for m in layers.values()}))
    return Built(module, f"torch.ao dynamic int8 ({len(layers)} {kinds} layers; the rest fp32)", export_s)


def quantizable_layers(net: nn.Module) -> dict[str, nn.Module]:
    """The layers dynamic quantization takes, by name, except inside nn.Transformer*Layer: their fused fast path
    reads each Linear's weight tensor, which a quantized Linear does not have."""
    fused = [name for name, m in net.named_modules()
             if isinstance(m, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer))]
    return {name: m for name, m in net.named_modules() if type(m) in QUANTIZABLE
            and not any(name.startswith(f"{outer}.") for outer in fused)}


def int8_weight_only(net: nn.Module) -> Built:
    """torchao's int8 weight-only quantization (its config class where torchao has one, else the older function)."""
    try:
        from torchao import quantization as ao
    except ImportError:
        raise Unsupported("int8 on a GPU needs torchao (pip install torchao)") from None
    config = ao.Int8WeightOnlyConfig() if hasattr(ao, "Int8WeightOnlyConfig") else ao.int8_weight_only()
    module = copy.deepcopy(net).eval()
    _, export_s = timed(lambda: ao.quantize_(module, config))
    return Built(module, "torchao int8 weight-only", export_s)


BUILDERS: dict[str, Callable[[nn.Module, tuple, torch.device, str], Built]] = {
    "eager": eager, "compile": compiled, "export": exported, "onnxruntime": onnxruntime, "int8": int8}
assert tuple(BUILDERS) == BACKENDS


def build(backend: str, net: nn.Module, args: tuple, device: torch.device, precision: str) -> Built:
    """The backend of `net`, or Unsupported with the reason (the run's precision, the inputs, the layers)."""
    if backend not in ("eager", "compile") and precision not in EXPORTED_ONLY_IN:
        raise Unsupported(f"{backend} runs the fp32 network; this run's precision is {precision}")
    return BUILDERS[backend](net, args, device, precision)
