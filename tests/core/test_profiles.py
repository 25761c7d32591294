"""bench/core/profiles.py: the epochs a quality run may train depend on its profile and device class (issue 30: quick
on a GPU takes standard's caps, so it can reach every target), and the row and `dnnbench list` say so."""

import lightning_modules
from bench.cli import main
from bench.core.profiles import DEVICE_CAPS, PROFILES, STOPS_AT_TARGET, epoch_cap


def test_quick_on_cuda_takes_standards_caps_and_every_other_pair_its_own():
    epochs = {"smoke": 1, "quick": 2, "standard": 10, "full": 20}
    assert epoch_cap(epochs, "quick", "cuda") == 10 and epoch_cap(epochs, "quick", "cpu") == 2
    assert [epoch_cap(epochs, p, "cuda") for p in ("smoke", "standard", "full")] == [1, 10, 20]
    # a cap is only raised where the run still stops at its target: a fixed schedule keeps its length
    assert all(STOPS_AT_TARGET[profile] and STOPS_AT_TARGET[other] for (profile, _), other in DEVICE_CAPS.items())
    assert set(DEVICE_CAPS.values()) <= set(PROFILES)


def test_dnnbench_list_shows_each_models_cap_on_cuda(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name, cls in lightning_modules.items():
        line = next(line for line in out.splitlines() if line.split()[:1] == [name])
        assert f"(quick on cuda: {cls.bench.epochs['standard']})" in line, line
