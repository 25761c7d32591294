"""The `run` flags that are not config axes, each checked (step: planning's inputs one at a time -> typed values, or
a PlanError naming the flag and what it takes).

Plain parsing and type checks, shared by bench/plan/planner.py: no registry is read here. The sweep axes' comma lists
are checked by their own entries (bench/core/choices.py, hung on bench/core/axes.py).
"""

from __future__ import annotations

import argparse
import ast
import collections.abc
import inspect
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

from bench.core.auto_repeats import DEFAULT_MAX_REPEATS, DEFAULT_MAX_SECONDS, AutoRepeats
from bench.core.errors import PlanError


def key_values(pairs: list[str]) -> dict:
    """--data-arg key=value -> {key: value}, values parsed as Python literals where they are ones."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PlanError(f"expected key=value, got {pair!r}")
        try:
            parsed[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key] = {"true": True, "false": False}.get(value.lower(), value)
    return parsed


def fits(value: Any, hint: Any) -> bool:
    """Whether an argument value has its annotated type; annotations this cannot judge let it pass."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint in (float, int):  # an int is a fine float; a bool is no number here
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    if hint in (tuple, list) or origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, (tuple, list)):  # (JSON hands the child a list for a tuple anyway)
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(fits, value, args))
        return all(fits(v, args[0]) for v in value) if args else True
    if hint is type(None):
        return value is None
    target = origin or hint  # dict[str, int] -> dict
    return isinstance(value, target) if isinstance(target, type) and target is not typing.Any else True


def check_arguments(what: str, cls: type, arguments: dict[str, Any]) -> None:
    """Each --model-arg / --data-arg is a keyword the constructor takes, of the type it annotates."""
    parameters = inspect.signature(cls.__init__).parameters  # type: ignore[misc]  # the class its own
    keywords = [n for n, p in parameters.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:  # an annotation that does not resolve here: check names only
        hints = {}
    for key, value in arguments.items():
        if key not in keywords:
            if takes_any:
                continue
            raise PlanError(f"{what} takes no argument {key!r}; it takes {', '.join(keywords)}")
        if key in hints and not fits(value, hints[key]):
            raise PlanError(f"{what} argument {key}={value!r} is not {type_name(hints[key])}")


def type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def check_numbers(args: argparse.Namespace) -> None:
    """Counts at least 1, seconds and TFLOP/s positive and finite (a nan time limit would never fire)."""
    auto = auto_repeats(args)
    repeats = 1 if auto else args.repeats
    if repeats < 1 or args.num_nodes < 1:
        raise PlanError("--repeats and --num-nodes must be at least 1")
    most = auto.max_repeats if auto else repeats
    if not 0 <= args.seed <= args.seed + most - 1 < 2**32:  # repeat r runs with seed + r
        raise PlanError(f"--seed must be in 0..{2**32 - 1} (what Lightning's seed_everything takes), the last "
                        f"repeat's too (seed + repeats - 1); got {args.seed} with {most} repeats")
    for flag, value in (("--time-limit", args.time_limit), ("--peak-tflops", args.peak_tflops)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise PlanError(f"{flag} must be a positive finite number; got {value:g}")


def auto_repeats(args: argparse.Namespace) -> AutoRepeats | None:
    """--repeats auto's settings (--precision-target, --max-repeats, --max-repeat-seconds), checked; None without it
    (and then none of the three may be given)."""
    given = {flag: value for flag, value in (("--precision-target", getattr(args, "precision_target", None)),
                                             ("--max-repeats", getattr(args, "max_repeats", None)),
                                             ("--max-repeat-seconds", getattr(args, "max_repeat_seconds", None)))
             if value is not None}
    if args.repeats != "auto":
        if given:
            raise PlanError(f"{', '.join(given)} go(es) with --repeats auto; --repeats {args.repeats} runs exactly "
                            "that many processes per config")
        return None
    target, most, seconds = (given.get(flag) for flag in ("--precision-target", "--max-repeats",
                                                           "--max-repeat-seconds"))
    if target is not None and not (math.isfinite(target) and 0 < target < 100):
        raise PlanError(f"--precision-target takes a percentage above 0 and below 100 (5: ±5 %); got {target:g}")
    if most is not None and most < 2:
        raise PlanError(f"--max-repeats must be at least 2 (one process has no interval); got {most}")
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise PlanError(f"--max-repeat-seconds must be a positive finite number; got {seconds:g}")
    return AutoRepeats(target, DEFAULT_MAX_REPEATS if most is None else int(most),
                       DEFAULT_MAX_SECONDS if seconds is None else float(seconds))


def output_folder(text: str) -> Path:
    """--out as an absolute path; a symlink loop or an unusable name is one line, not a traceback."""
    try:
        return Path(text).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a symlink loop (OSError from Python 3.13)
        raise PlanError(f"--out {text!r} cannot be used ({exc})") from None


RAY_ADDRESS = re.compile(r"(ray://)?([\w.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})")


def execution(args: argparse.Namespace) -> dict:
    """--parallel, --executor and --ray-address, checked together."""
    parallel_text = getattr(args, "parallel", None)
    executor, address = getattr(args, "executor", "local"), getattr(args, "ray_address", None)
    parallel: int | None = 1
    if parallel_text == "auto":
        parallel = None
    elif parallel_text is not None:
        if not (str(parallel_text).isascii() and str(parallel_text).isdigit()) or int(parallel_text) < 1:
            raise PlanError(f"--parallel takes a positive integer or auto; got {parallel_text!r}")
        parallel = int(parallel_text)
    if executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise PlanError("--executor ray needs Ray: pip install 'dnnbench[ray]'")
        if parallel_text is not None:
            raise PlanError("--parallel is for --executor local; Ray places each run by its GPUs and CPUs")
        match = RAY_ADDRESS.fullmatch(address or "")
        if address and address not in ("auto", "local") and not (match and 0 < int(match["port"]) < 65536):
            raise PlanError(f"--ray-address takes auto, local, HOST:PORT (a Ray head) or ray://HOST:PORT (Ray "
                            f"Client); got {address!r}")
    elif address:
        raise PlanError("--ray-address needs --executor ray")
    return {"parallel": parallel, "executor": executor, "ray_address": address}
