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
