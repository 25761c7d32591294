"""bench/run/environment.py: a CPU row's environment loads no GPU library (issue 33, item 9: under `ulimit -v` the
cuDNN load aborted every CPU run)."""

import torch

from bench.run.environment import environment


def test_a_cpu_row_never_asks_for_cudnn(monkeypatch):
    def loads_cudnn():
        raise AssertionError("cuDNN loaded for a CPU row")

    monkeypatch.setattr(torch.backends.cudnn, "version", loads_cudnn)
    cells = environment("cpu")
    assert cells["cudnn_version"] == "" and cells["torch_version"] == torch.__version__
