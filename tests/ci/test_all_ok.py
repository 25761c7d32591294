"""`.ci/all_ok.py`, the check behind make test-compat's sweeps: it fails on any row that is not ok, on a missing file
and on a file with no rows, and names each such row with its message."""

import importlib.util
from pathlib import Path

import pytest

from bench.core.columns import SCHEMA_VERSION, Status
from bench.core.config import RunConfig
from bench.core.inference_columns import INFERENCE_COLUMNS, INFERENCE_SCHEMA_VERSION
from bench.results.io import append_row

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "all_ok.py"


@pytest.fixture(scope="module")
def all_ok():
    spec = importlib.util.spec_from_file_location("all_ok", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_cells(model: str) -> dict:
    return RunConfig(model=model, datamodule="mnist5k", profile="smoke", batch_size=32).columns()


def results_csv(path: Path, statuses: dict[str, Status]) -> Path:
    for model, status in statuses.items():
        message = "" if status == Status.OK else f"{model} went {status}"
        append_row(path, config_cells(model) | {"status": status, "message": message,
                                                 "schema_version": SCHEMA_VERSION})
    return path


def inference_csv(path: Path, statuses: dict[str, Status]) -> Path:
    for backend, status in statuses.items():
        append_row(path, config_cells("mlp") | {"run_id": "r0", "backend": backend, "infer_batch_size": 32,
                                                "status": status, "message": f"{backend}: {status}",
                                                "schema_version": INFERENCE_SCHEMA_VERSION}, INFERENCE_COLUMNS)
    return path


def test_every_row_ok_passes(all_ok, tmp_path, capsys):
    results = results_csv(tmp_path / "results.csv", {"mlp": Status.OK, "cnn": Status.OK})
    inference = inference_csv(tmp_path / "inference.csv", {"eager": Status.OK, "int8": Status.OK})
    assert all_ok.main([str(results), str(inference)]) == 0
    assert "every row ok" in capsys.readouterr().out


def test_a_measured_but_not_ok_row_fails_and_is_named(all_ok, tmp_path, capsys):
    """`dnnbench run` exits 0 on an unsupported or oom row (a measurement); this check must not."""
    results = results_csv(tmp_path / "results.csv", {"mlp": Status.OK, "cnn": Status.UNSUPPORTED})
    assert all_ok.main([str(results)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "cnn went unsupported" in lines[0] and ": unsupported:" in lines[0]


def test_a_backend_row_not_ok_fails_with_its_backend(all_ok, tmp_path, capsys):
    inference = inference_csv(tmp_path / "inference.csv", {"eager": Status.OK, "export": Status.TIMEOUT})
    assert all_ok.main([str(inference)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "export batch 32: timeout" in line


def test_a_missing_or_empty_file_fails(all_ok, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    header_only = tmp_path / "empty" / "inference.csv"
    header_only.write_text(",".join(INFERENCE_COLUMNS) + "\r\n")
    assert all_ok.main([str(tmp_path / "results.csv"), str(header_only)]) == 1
    err = capsys.readouterr().err
    assert "no such file" in err and "no rows" in err
