"""bench/launch/start.py: the processes a sweep starts import dnnbench's `bench`, never the working directory's, on
every Python that pyproject allows (3.10 has no PYTHONSAFEPATH)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.launch.warm_client import START_SCRIPT


def python_310() -> str | None:
    """A Python 3.10 on this machine (PATH, else pyenv's versions), or None. It needs none of our dependencies: the
    check below stops before torch is imported."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in [shutil.which("python3.10"), *map(str, sorted(pyenv.glob("versions/3.10*/bin/python3.10")))]:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


def interpreter(python: str) -> str:
    """`this`: the Python running the tests; `3.10`: the oldest that pyproject allows, where there is one."""
    return sys.executable if python == "this" else (python_310() or pytest.skip("no Python 3.10 here"))


def folder_with_its_own_bench(folder: Path) -> Path:
    """A user's folder whose `bench/` refuses to load."""
    (folder / "bench").mkdir(parents=True)
    (folder / "bench" / "__init__.py").write_text("raise ImportError('the working directory\\'s bench/')\n")
    return folder


def without_safe_path() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONSAFEPATH", "PYTHONPATH")}


@pytest.mark.parametrize("python", ["this", "3.10"])
def test_a_run_started_in_a_folder_with_its_own_bench_imports_ours(tmp_path, python):
    """The run is ours: it reads its job file (missing here, so it stops there, exit 2, before any heavy import)."""
    cwd = folder_with_its_own_bench(tmp_path)
    result = subprocess.run([interpreter(python), START_SCRIPT, "run", str(tmp_path / "missing.json")], cwd=cwd,
                            env=without_safe_path(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "dnnbench: job file refused" in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize("python", ["this", "3.10"])
def test_the_start_script_imports_bench_from_its_own_install_and_leaves_its_folder_off_the_path(tmp_path, python):
    """start.py copied into an install of its own, beside a stand-in run: `bench` comes from that install, and the
    script's folder (bench/launch/ holds `sweep`, `console`, ...), which Python put first, is not on the path."""
    install = tmp_path / "install"
    (install / "bench" / "launch").mkdir(parents=True)
    (install / "bench" / "run").mkdir()
    for package in ("bench", "bench/launch", "bench/run"):
        (install / package / "__init__.py").write_text("")
    shutil.copy(START_SCRIPT, install / "bench" / "launch" / "start.py")
    (install / "bench" / "run" / "child.py").write_text(  # the run's stand-in: which bench, and the import path
        "import sys\n\ndef main(args):\n    import bench\n    print(bench.__file__)\n    print(sys.path)\n"
        "    return 0\n")
    result = subprocess.run([interpreter(python), str(install / "bench" / "launch" / "start.py"), "run", "job"],
                            cwd=folder_with_its_own_bench(tmp_path / "user"), env=without_safe_path(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    bench_file, path = result.stdout.splitlines()
    assert Path(bench_file).resolve() == (install / "bench" / "__init__.py").resolve()
    assert str(install / "bench" / "launch") not in path and str(install) not in path
