"""Inference backends on hosts that lack a toolchain or a provider: `Unsupported` with the reason, found before the
export where it can be (torch's cpp_extension, onnxruntime's providers and the exporters spec'd from the real ones)."""

from __future__ import annotations

from unittest import mock

import onnxruntime
import pytest
import torch
import torch._inductor
from torch.utils import cpp_extension

from bench.run.measure import backends

CUDA = torch.device("cuda")


def never_called(function):
    """`function` spec'd, failing the test if the backend gets as far as calling it."""
    return mock.create_autospec(function, side_effect=AssertionError(f"{function.__name__} was called"))


def test_export_on_a_gpu_host_without_the_cuda_toolkit_is_unsupported_before_exporting(monkeypatch):
    monkeypatch.setattr(cpp_extension, "CUDA_HOME", None)
    monkeypatch.setattr(torch.export, "export", never_called(torch.export.export))
    with pytest.raises(backends.Unsupported, match="needs the CUDA toolkit"):
        backends.exported(torch.nn.Linear(4, 2), (torch.randn(3, 4),), CUDA, "32-true")


def test_an_aotinductor_build_that_cannot_find_its_toolchain_is_unsupported(monkeypatch):
    """torch's cpp_extension raises OSError where CUDA_HOME or a compiler is missing."""
    refusal = OSError("CUDA_HOME environment variable is not set. Please set it to your CUDA install root.")
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", mock.create_autospec(
        torch._inductor.aoti_compile_and_package, side_effect=refusal))
    with pytest.raises(backends.Unsupported, match="AOTInductor cannot build here .*CUDA_HOME"):
        backends.exported(torch.nn.Linear(4, 2), (torch.randn(3, 4),), torch.device("cpu"), "32-true")


def test_a_cpu_only_onnxruntime_on_a_gpu_row_is_unsupported_before_the_export(monkeypatch):
    monkeypatch.setattr(onnxruntime, "get_available_providers", mock.create_autospec(
        onnxruntime.get_available_providers, return_value=["AzureExecutionProvider", "CPUExecutionProvider"]))
    monkeypatch.setattr(torch.onnx, "export", never_called(torch.onnx.export))
    with pytest.raises(backends.Unsupported, match="no CUDA provider"):
        backends.onnxruntime(torch.nn.Linear(4, 2), (torch.randn(3, 4),), CUDA, "32-true")


def test_a_gpu_onnxruntime_runs_on_its_gpu_providers_first(monkeypatch):
    monkeypatch.setattr(onnxruntime, "get_available_providers", mock.create_autospec(
        onnxruntime.get_available_providers, return_value=["CUDAExecutionProvider", "CPUExecutionProvider"]))
    assert backends.onnx_providers(CUDA) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert backends.onnx_providers(torch.device("cpu")) == ["CPUExecutionProvider"]
