"""Model registry: `lightning_modules.get("cnn")`, `lightning_modules.names()`, `build(...)`.

Each file in this package defines one architecture and registers it with `@register("name")`. Importing the
package loads no torch: the model code (and `base`) loads on the first lookup, so the plain facts beside it
(`lightning_modules.sizes`) stay cheap for the commands that only read results.
"""

from __future__ import annotations

from typing import Any

from registries import ConfigError, Registry

MODELS = Registry("model", package=__name__)
register = MODELS.register
get = MODELS.get
names = MODELS.names
items = MODELS.items
LAZY = ("BenchSpec", "build_model", "check_compatible")  # from lightning_modules.base, loaded when first asked


def __getattr__(name: str) -> Any:
    if name in LAZY:
        from lightning_modules import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BenchSpec", "ConfigError", "MODELS", "build_model", "check_compatible", "get", "items", "names",
           "register"]
