"""Profiles and sizes (step: the names every later step reads: how long a run trains, at which size; plain data, no
torch, so `dnnbench list --help`, report and compare read them without loading a model). Each model declares its
epochs per profile and its preset per size (lightning_modules: BenchSpec, SizePreset); planning checks it names
every profile."""

from __future__ import annotations

PROFILES = ("smoke", "quick", "standard", "full")
SIZES = ("classic", "large")  # classic: the textbook network on MNIST-scale data; large: fills a modern GPU
# Profiles whose quality runs stop at the first validation that reaches the model's target (`--stop-at-target auto`,
# MLPerf's rule: time-to-train ends at the target); there the profile's epochs are a cap. smoke only checks that
# everything runs; full keeps fixed schedules (learning curves).
STOPS_AT_TARGET = {"smoke": False, "quick": True, "standard": True, "full": False}
assert set(STOPS_AT_TARGET) == set(PROFILES)
# Quick's epoch caps are sized for minutes on a 2-core CPU (capsnet 2, resnet 3, gan 2, dqn 1), which leaves several
# families short of their target by construction; quality per epoch does not depend on the device, and on a GPU an
# epoch of the classic models takes about a second. So on cuda, quick takes standard's caps: it still stops at the
# target, so the runs that get there early cost no more (issue 30: quick on a GPU can reach every target).
DEVICE_CAPS = {("quick", "cuda"): "standard"}  # (profile, device type) -> the profile whose epochs cap it there


def epoch_cap(epochs: dict[str, int], profile: str, device: str) -> int:
    """The epochs a quality run of `profile` may train on `device` (a cap where it stops at the target)."""
    return epochs[DEVICE_CAPS.get((profile, device), profile)]

