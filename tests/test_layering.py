"""bench/'s packages import one way (bench/__init__.py's map): each only from packages below it, read from the source
of every module (imports inside functions included), so an arrow against the data path fails here, not in review."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REFERENCE_RESULTS, ROOT, run_python

BENCH = ROOT / "bench"
# Lowest first: a package may import from its own package and the ones before it.
ORDER = ("core", "results", "integrations", "plan", "run", "launch", "report", "check")
TOP_LEVEL = {"__init__", "__main__", "cli"}  # the entry points: they may import any package


def bench_imports(path: Path) -> set[str]:
    """The `bench.<package>` names a module imports (relative imports resolved), anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path.relative_to(ROOT)}: relative import (bench uses absolute ones)")
            names = [node.module or ""]
            if node.module == "bench":
                names = [f"bench.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name.split(".")[1] for name in names if name.startswith("bench.") and name.count(".") >= 1)
    return found


def package_of(path: Path) -> str:
    return path.relative_to(BENCH).parts[0].removesuffix(".py")


def test_every_package_imports_only_from_below_it():
    against = []
    for path in sorted(BENCH.rglob("*.py")):
        package = package_of(path)
        if package in TOP_LEVEL:
            continue
        assert package in ORDER, f"bench/{package} is not in the map (bench/__init__.py and ORDER here)"
        allowed = set(ORDER[:ORDER.index(package) + 1])
        against += [f"{path.relative_to(ROOT)} imports bench.{name}" for name in bench_imports(path) - allowed]
    assert not against, "imports against the data path:\n" + "\n".join(against)


def test_bench_has_at_most_six_top_level_modules_and_every_package_is_mapped():
    modules = sorted(p.stem for p in BENCH.glob("*.py"))
    assert len(modules) <= 6, modules
    packages = sorted(p.name for p in BENCH.iterdir() if (p / "__init__.py").exists())
    assert sorted(packages) == sorted(ORDER)
    mapped = (BENCH / "__init__.py").read_text()
    assert all(f"bench/{package}/" in mapped for package in ORDER)


def test_models_and_data_never_import_the_runner():
    for folder in ("lightning_modules", "datamodules", "registries"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not bench_imports(path) and "import bench" not in path.read_text(), path


def test_the_layering_check_sees_an_import_against_the_grain(tmp_path):
    module = tmp_path / "bench" / "core" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from bench.report import compare\n    from bench import launch\n")
    assert bench_imports(module) == {"report", "launch"}


@pytest.mark.integration
def test_report_compare_and_core_load_no_torch():
    code = ("import sys; import bench.cli, bench.report.page, bench.report.compare, bench.core.config, "
            "bench.core.columns, bench.results.io; print('torch' in sys.modules, 'lightning' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr[-2000:]


HEAVY = "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'pytorch_lightning'}))"


@pytest.mark.integration
@pytest.mark.parametrize("argv", [["compare", "{a}", "{a}"], ["report", "{a}", "--out", "{out}"], ["list", "--help"]])
def test_compare_report_and_list_help_load_neither_torch_nor_lightning(argv, tmp_path):
    argv = [part.format(a=REFERENCE_RESULTS[0], out=tmp_path) for part in argv]
    code = ("import contextlib, io, sys\nimport bench.cli\nwith contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        bench.cli.main({argv!r})\n    except SystemExit:\n        pass\n{HEAVY}")
    assert run_python(code).strip() == "[]"


def module_graph() -> dict[str, set[str]]:
    """Each bench module's imports of other bench modules, at any depth of its code (lazy imports included)."""
    graph = {}
    for path in (ROOT / "bench").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench"):
                targets |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name.startswith("bench")}
        graph[name] = targets
    return {name: {t for t in targets if t in graph and t != name} for name, targets in graph.items()}


def test_no_import_cycle_among_bench_modules():
    graph = module_graph()
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            assert state.get(target) != "open", " -> ".join([*path, name, target])
            if target not in state:
                visit(target, [*path, name])
        state[name] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_models_take_their_registry_from_the_neutral_module():
    for package in ("lightning_modules", "datamodules"):
        for path in (ROOT / package).glob("*.py"):
            other = {"lightning_modules": "datamodules", "datamodules": "lightning_modules"}[package]
            assert f"from {other}.registry" not in path.read_text(), path
