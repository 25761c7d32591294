"""Model registry: `lightning_modules.get("cnn")`, `lightning_modules.names()`, `build(...)`.

Each file in this package defines one architecture and registers it with `@register("name")`.
"""

from datamodules.registry import ConfigError, Registry
from lightning_modules.base import BenchSpec, build_model, check_compatible

MODELS = Registry("model", package=__name__)
register = MODELS.register
get = MODELS.get
names = MODELS.names
items = MODELS.items

__all__ = ["BenchSpec", "ConfigError", "MODELS", "build_model", "check_compatible", "get", "items", "names",
           "register"]
