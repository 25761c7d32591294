"""The MFU denominator: every peak-table figure is a dense datasheet figure, and the dtype follows what the
kernels may use (matmuls by the matmul precision, convolutions and RNNs by cuDNN's TF32 switch)."""

import pytest
import torch

from bench.run.measure import peaks

# Figures as the vendors print them (TFLOP/s per GPU); "sparse" ones are printed with structured sparsity (the
# datasheets' asterisk), twice the dense rate. fp64 = the FP64 tensor-core rate where there is one.
DATASHEETS = {
    "h100": ("NVIDIA H100 Tensor Core GPU datasheet, H100 SXM",
             {"fp64": 67, "fp32": 67, "tf32": (989, "sparse"), "bf16": (1979, "sparse"), "fp16": (1979, "sparse")}),
    "h100 pcie": ("NVIDIA H100 Tensor Core GPU datasheet, H100 PCIe",
                  {"fp64": 51, "fp32": 51, "tf32": (756, "sparse"), "bf16": (1513, "sparse"),
                   "fp16": (1513, "sparse")}),
    "h100 nvl": ("NVIDIA H100 Tensor Core GPU datasheet, H100 NVL",
                 {"fp64": 60, "fp32": 60, "tf32": (835, "sparse"), "bf16": (1671, "sparse"),
                  "fp16": (1671, "sparse")}),
    "h200": ("NVIDIA H200 Tensor Core GPU datasheet, H200 SXM",
             {"fp64": 67, "fp32": 67, "tf32": (989, "sparse"), "bf16": (1979, "sparse"), "fp16": (1979, "sparse")}),
    "h200 nvl": ("NVIDIA H200 Tensor Core GPU datasheet, H200 NVL",
                 {"fp64": 60, "fp32": 60, "tf32": (835, "sparse"), "bf16": (1671, "sparse"),
                  "fp16": (1671, "sparse")}),
    "gh200": ("NVIDIA GH200 Grace Hopper Superchip datasheet (its H100/H200 GPU)",
              {"fp64": 67, "fp32": 67, "tf32": (989, "sparse"), "bf16": (1979, "sparse"), "fp16": (1979, "sparse")}),
    "b200": ("NVIDIA HGX B200 datasheet, 8 GPUs (divided by 8 here)",
             {"fp64": 296 / 8, "fp32": 600 / 8, "tf32": (18000 / 8, "sparse"), "bf16": (36000 / 8, "sparse"),
              "fp16": (36000 / 8, "sparse")}),
    "a100": ("NVIDIA A100 Tensor Core GPU datasheet (dense | sparse both printed; dense here)",
             {"fp64": 19.5, "fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312}),
    "l40s": ("NVIDIA L40S datasheet (dense | sparse both printed; dense here)",
             {"fp32": 91.6, "tf32": 183, "bf16": 362.05, "fp16": 362.05}),
    "l4": ("NVIDIA L4 Tensor Core GPU datasheet",
           {"fp32": 30.3, "tf32": (120, "sparse"), "bf16": (242, "sparse"), "fp16": (242, "sparse")}),
    "rtx 4090": ("NVIDIA Ada GPU architecture whitepaper, GeForce RTX 4090 (16-bit with FP32 accumulate)",
                 {"fp32": 82.6, "tf32": (165.2, "sparse"), "bf16": (330.4, "sparse"), "fp16": (330.4, "sparse")}),
    "rtx 5090": ("NVIDIA RTX Blackwell GPU architecture whitepaper, GeForce RTX 5090 (16-bit with FP32 accumulate)",
                 {"fp32": 104.8, "tf32": (209.5, "sparse"), "bf16": (419, "sparse"), "fp16": (419, "sparse")}),
}


def dense(printed) -> float:
    value, kind = printed if isinstance(printed, tuple) else (printed, "dense")
    return value / 2 if kind == "sparse" else value


def test_every_peak_is_a_dense_datasheet_figure():
    table = dict(peaks.DENSE_PEAK_TFLOPS)
    assert set(table) == set(DATASHEETS), "a table entry without a datasheet here, or the reverse"
    for entry, figures in table.items():
        source, printed = DATASHEETS[entry]
        assert set(figures) == set(printed), (entry, source)
        for dtype, value in figures.items():
            assert value == pytest.approx(dense(printed[dtype]), rel=0.002), (entry, dtype, source)


@pytest.fixture
def h100(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(peaks, "tf32_allowed", lambda: False)  # --matmul-precision highest
    return torch.device("cuda", 0)


def test_fp32_convolutions_and_rnns_use_the_tf32_peak_when_cudnn_allows_it(h100, monkeypatch):
    assert torch.backends.cudnn.allow_tf32  # torch's default, read at measurement time
    assert peaks.device_peak(h100, torch.float32, 1, cudnn_share=1.0) == peaks.Peak(494.7, "tf32", "table: h100")
    assert peaks.device_peak(h100, torch.float32, 1, cudnn_share=0.0) == peaks.Peak(67.0, "fp32", "table: h100")
    mixed = peaks.device_peak(h100, torch.float32, 1, cudnn_share=0.9)  # a CNN with a linear head
    assert mixed.tflops == pytest.approx(1 / (0.9 / 494.7 + 0.1 / 67.0)) and mixed.dtype.startswith("tf32 conv")
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # --cudnn-tf32 off
        assert peaks.device_peak(h100, torch.float32, 1, cudnn_share=0.9) == peaks.Peak(67.0, "fp32", "table: h100")
    assert peaks.device_peak(h100, torch.bfloat16, 2, cudnn_share=0.9) == peaks.Peak(2 * 989.4, "bf16", "table: h100")


def test_fp64_uses_the_tensor_core_rate(h100):
    assert peaks.device_peak(h100, torch.float64, 1).tflops == 67.0


def test_peaks_are_dense_datasheet_figures_by_dtype_and_tf32_setting(monkeypatch):
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert peaks.device_peak(cuda, torch.bfloat16, 1) == peaks.Peak(989.4, "bf16", "table: h200")
    assert peaks.device_peak(cuda, torch.float32, 2).tflops == 2 * 67.0
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "high")
    assert peaks.device_peak(cuda, torch.float32, 1) == peaks.Peak(494.7, "tf32", "table: h200")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 NVL")
    assert peaks.device_peak(cuda, torch.float16, 1).source == "table: h100 nvl"
    assert peaks.device_peak(cuda, torch.float16, 1, override=123.0) == peaks.Peak(123.0, "fp16", "--peak-tflops")
    assert peaks.device_peak(torch.device("cpu"), torch.float32, 1).tflops is None
