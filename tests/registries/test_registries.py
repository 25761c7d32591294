"""registries/: names, import paths and the package scan behind lightning_modules.get and datamodules.get."""

import pytest

import datamodules
import lightning_modules
from datamodules import ConfigError
from registries import Registry, load_import_path


def test_datamodule_names_include_the_standard_sources():
    names = datamodules.names()
    for expected in ("mnist5k", "mnist", "fashion_mnist", "cifar10", "synthetic", "seq2seq", "seq_mnist5k"):
        assert expected in names


def test_get_returns_the_registered_class_with_its_name():
    cls = datamodules.get("mnist5k")
    assert cls.registry_name == "mnist5k"
    assert cls.__name__ == "MNIST5k"


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ConfigError) as err:
        datamodules.get("imagenet")
    message = str(err.value)
    assert "unknown datamodule 'imagenet'" in message
    assert "mnist5k" in message and "cifar10" in message


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        lightning_modules.get("nope")


def test_import_path_loads_a_users_class():
    assert datamodules.get("datamodules.synthetic:Synthetic") is datamodules.get("synthetic")
    assert load_import_path("collections:OrderedDict", "thing").__name__ == "OrderedDict"


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("no_such_package.mod:Thing", "cannot be imported"),
        ("datamodules.synthetic:NoSuchClass", "has no attribute 'NoSuchClass'"),
        ("datamodules.synthetic:", "must look like"),
    ],
)
def test_bad_import_paths_are_clear_errors(path, fragment):
    with pytest.raises(ConfigError, match=fragment):
        datamodules.get(path)


@pytest.mark.parametrize("source, fragment", [
    ("def f(:\n    pass\n", "failed at {file}:1: SyntaxError"),
    ("x = 1\nundefined_name\n", "failed at {file}:2: NameError: name 'undefined_name' is not defined"),
    ("import sys\nsys.exit(3)\n", "failed at {file}:2: SystemExit: 3"),
    ("raise RuntimeError('two\\nlines')\n", "failed at {file}:1: RuntimeError: two lines"),
])
def test_a_module_whose_own_code_fails_on_import_is_one_clear_error(tmp_path, monkeypatch, source, fragment):
    """A user's model file with a syntax error or an exit at import: where and why, never a traceback or a silent
    exit of dnnbench itself."""
    module = f"broken_{abs(hash(source))}"
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as raised:
        load_import_path(f"{module}:Net", "model")
    assert fragment.format(file=tmp_path / f"{module}.py") in str(raised.value) and "\n" not in str(raised.value)


def test_registering_two_classes_under_one_name_is_refused():
    registry = Registry("thing", package="datamodules")

    @registry.register("a")
    class First:
        pass

    with pytest.raises(ValueError, match="registered twice"):

        @registry.register("a")
        class Second:
            pass


def test_model_registry_is_filled_by_scanning_the_package():
    # Every public module under lightning_modules/ that registers a class is found without a hand-kept list.
    for name, cls in lightning_modules.items():
        assert cls.registry_name == name
        assert cls.__module__.startswith("lightning_modules.")
