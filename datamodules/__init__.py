"""Datamodule registry: `datamodules.get("mnist5k")`, `datamodules.names()`.

Each file in this package defines one data source and registers it with `@register("name")`.
"""

from registries import ConfigError, Registry

DATAMODULES = Registry("datamodule", package=__name__)
register = DATAMODULES.register
get = DATAMODULES.get
names = DATAMODULES.names
items = DATAMODULES.items

__all__ = ["ConfigError", "DATAMODULES", "get", "items", "names", "register"]
