"""A tiny model for `dnnbench check`'s probe in tests: FakeNet with epochs long enough (32 steps) for the speed
window's 10-step sub-windows, so the window ends after its 100 steps."""

from dataclasses import replace

from tests.fake_models import FakeNet


class ProbeNet(FakeNet):
    bench = replace(FakeNet.bench, classic=replace(
        FakeNet.bench.classic, batch_size=32, data={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 1024}))
