"""Size presets: what each model runs at each size (plain data, no torch). The size and profile names themselves are
the runner's (bench/core/profiles.py); a model declares presets and epochs for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SizePreset:
    """One size of a model: constructor overrides, the data it runs on by default, its batch size.

    `smoke_model` / `smoke_data` / `smoke_batch_size` shrink it for the `smoke` profile and CPU tests: the same
    structure at a small depth, width and image size, so a smoke run takes seconds.
    """

    model: dict[str, Any] = field(default_factory=dict)  # constructor keyword overrides
    datamodule: str = "synthetic"
    data: dict[str, Any] = field(default_factory=dict)  # datamodule keyword arguments on `datamodule`
    batch_size: int = 256
    metric_target: float | None = None  # only where the size keeps the classic task (DQN: CartPole is CartPole)
    smoke_model: dict[str, Any] = field(default_factory=dict)
    smoke_data: dict[str, Any] = field(default_factory=dict)
    smoke_batch_size: int | None = None

    def model_overrides(self, profile: str) -> dict[str, Any]:
        return self.model | (self.smoke_model if profile == "smoke" else {})

    def data_kwargs(self, datamodule: str, profile: str) -> dict[str, Any]:
        """The datamodule arguments this size sets on its own datamodule (none on any other)."""
        if datamodule != self.datamodule:
            return {}
        return self.data | (self.smoke_data if profile == "smoke" else {})

    def default_batch_size(self, profile: str) -> int:
        return self.smoke_batch_size if profile == "smoke" and self.smoke_batch_size else self.batch_size

    def describe(self) -> str:
        """One line for `dnnbench list`."""
        data = ", ".join(f"{k}={v}" for k, v in self.data.items())
        model = " ".join(f"{k}={v}" for k, v in self.model.items())
        return (f"data={self.datamodule}" + (f"({data})" if data else "") + f" batch={self.batch_size}"
                + (f" model: {model}" if model else ""))
