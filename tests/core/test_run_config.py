"""bench/core/config.py: RunConfig is a written, frozen dataclass whose fields are the axes table's (names, order,
types, defaults), with the run settings in their own RunSettings, and whose fields type checkers see as they are."""

import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from bench.core.axes import AXES
from bench.core.config import RunConfig, RunSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = [f.name for f in dataclasses.fields(RunSettings)]
AXIS_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig) if f.name not in SETTINGS}


def test_the_fields_are_the_tables_field_axes_in_its_order():
    assert list(AXIS_FIELDS) == [axis.name for axis in AXES if axis.field]
    assert not set(SETTINGS) & {axis.name for axis in AXES}  # a setting is no axis (no column, no identity)


@pytest.mark.parametrize("axis", [axis for axis in AXES if axis.field], ids=lambda axis: axis.name)
def test_each_field_has_its_axis_type_and_default(axis):
    field, hint = AXIS_FIELDS[axis.name], typing.get_type_hints(RunConfig)[axis.name]
    if typing.get_origin(hint) is typing.Literal:  # a closed set of names (the precisions): each of the axis's type
        assert all(type(name) is axis.type for name in typing.get_args(hint))
    else:
        assert (typing.get_origin(hint) or hint) is axis.type
    if axis.required:
        assert field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    elif axis.type is dict:  # a fresh {} per config
        assert axis.default is None and field.default_factory() == {}
    else:
        assert field.default == axis.default and type(field.default) is axis.type


def test_a_config_is_frozen_and_changed_by_but():
    config = RunConfig(model="mlp", datamodule="mnist5k")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 64
    assert config.but(batch_size=64).batch_size == 64 and config.batch_size == 128
    assert RunConfig(**config.to_dict()) == config  # what the child rebuilds from its job file


TYPED = """
from bench.core.config import RunConfig
config = RunConfig(model="mlp", datamodule="mnist5k")
reveal_type(config.batch_size)
reveal_type(config.compile)
reveal_type(config.model_args)
reveal_type(config.peak_tflops)
reveal_type(config.but(seed=1))
config.batch_size = 64
RunConfig(model="mlp", batch_size="64")
"""


@pytest.mark.integration
def test_mypy_reads_each_field_as_its_real_type(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "", "--cache-dir", str(tmp_path),
                             "--no-error-summary", "-c", TYPED], cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = result.stdout.splitlines()
    revealed = [line.split("Revealed type is ")[1].replace("builtins.", "") for line in lines if "Revealed" in line]
    assert revealed == ['"int"', '"bool"', '"dict[str, Any]"', '"float | None"', '"bench.core.config.RunConfig"'], (
        result.stdout + result.stderr)  # (mypy < 1.16 spells builtins.int)
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 3, result.stdout  # the frozen field, the missing datamodule, the str batch size
    assert "read-only" in errors[0] and "datamodule" in errors[1] and '"batch_size"' in errors[2]
