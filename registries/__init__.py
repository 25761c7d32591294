"""Name -> class registries shared by models and datamodules, filled by scanning a package (a neutral module:
neither package imports the other for it, and it imports nothing heavy)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any


class ConfigError(ValueError):
    """Bad user input (unknown name, missing data, unusable import path): reported, never a traceback."""


def load_import_path(path: str, what: str) -> Any:
    """Resolve `package.module:ClassName` to the object it names."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr or module_name.startswith("."):  # relative: nothing to be relative to
        raise ConfigError(f"{what} import path {path!r} must look like 'package.module:ClassName'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{what} import path {path!r}: module {module_name!r} cannot be imported ({exc}). "
            "Check the spelling and that the package is on PYTHONPATH or installed."
        ) from None
    except (Exception, SystemExit) as exc:  # the module's own code failed (a syntax error, an exit): one line
        raise ConfigError(f"{what} import path {path!r}: importing module {module_name!r} failed at "
                          f"{failed_at(exc)}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise ConfigError(
            f"{what} import path {path!r}: module {module_name!r} has no attribute {attr!r}."
        ) from None
    return obj


def failed_at(exc: BaseException) -> str:
    """`file:line` where an import failed: the offending line of a syntax error, else the innermost frame of the
    user's own code (not the standard library's or an installed package's: W&B, once started, wraps sys.exit)."""
    import sysconfig
    import traceback

    if isinstance(exc, SyntaxError):
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    installed = tuple(sysconfig.get_paths()[key] for key in ("stdlib", "purelib", "platlib"))
    own = [f for f in frames if not f.filename.startswith(("<", *installed))]
    if not (own or frames):
        return "?"
    frame = (own or frames)[-1]
    return f"{frame.filename}:{frame.lineno}"


class Registry:
    """Classes registered by short name; the package's modules are imported on first lookup."""

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self.package = package
        self._entries: dict[str, type] = {}
        self._scanned = False

    def register(self, name: str) -> Callable[[type], type]:
        def decorator(cls: type) -> type:
            existing = self._entries.get(name)
            if existing is not None and existing.__qualname__ != cls.__qualname__:
                raise ValueError(f"{self.kind} name {name!r} is registered twice ({existing} and {cls}).")
            cls.registry_name = name  # type: ignore[attr-defined]  # the name the class was registered under
            self._entries[name] = cls
            return cls

        return decorator

    def _scan(self) -> None:
        # Import every public module of the package once: registration happens at import time,
        # so a new file is all a new entry needs (no hand-edited list).
        if self._scanned:
            return
        self._scanned = True
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def names(self) -> list[str]:
        self._scan()
        return sorted(self._entries)

    def get(self, name: str) -> Any:  # a class with its registry's class attributes (a model's `bench` spec)
        """The class registered as `name`, or the class at import path `package.module:Class`."""
        if ":" in name:
            return load_import_path(name, self.kind)
        self._scan()
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(self.names()) or "(none registered)"
            raise ConfigError(
                f"unknown {self.kind} {name!r}. Valid names: {valid}. "
                f"A class of your own can be given as 'package.module:ClassName'."
            ) from None

    def items(self) -> list[tuple[str, Any]]:
        return [(name, self._entries[name]) for name in self.names()]
