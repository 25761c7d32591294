"""One config identity, the user's environment in the child, schema 3 and what the runner leaves to datamodules."""

import os
import subprocess
import sys
from pathlib import Path

from bench.cli import main
from bench.core.columns import COLUMNS
from bench.core.config import RunConfig
from bench.report.page import write_report
from bench.results.io import load_results, read_rows
from tests.helpers import FAKE, ROOT
from tests.results_fixtures import make_row, write_csv


def test_report_shows_two_batch_sizes_as_two_configs(tmp_path):
    rows = [make_row(batch_size=32, train_samples_per_s=900.0), make_row(batch_size=256, train_samples_per_s=300.0)]
    write_report([write_csv(tmp_path / "results.csv", rows)], tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "cpu 32-true bs32" in summary and "cpu 32-true bs256" in summary
    assert "n=2" not in summary  # never averaged as if they were repeats


def test_resume_reruns_a_config_whose_model_argument_changed(tmp_path):
    out = tmp_path / "sweep"
    common = ["run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled", "--no-progress",
              "--out", str(out), "--resume"]
    assert main(common + ["--model-arg", "mode=ok"]) == 0
    assert main(common + ["--model-arg", "mode=ok"]) == 0  # same config: skipped
    assert len(read_rows(out / "results.csv")) == 1
    assert main(common + ["--model-arg", "mode=nan"]) == 0  # another argument: another config, so it runs
    rows = read_rows(out / "results.csv")
    assert [(r["model_args"], r["status"]) for r in rows] == [('{"mode": "ok"}', "ok"), ('{"mode": "nan"}', "diverged")]


def dnnbench_command() -> list[str]:
    script = Path(sys.executable).parent / "dnnbench"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bench"]


def test_runs_from_a_foreign_folder_with_a_relative_out_and_a_local_model(tmp_path):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    source = (ROOT / "tests" / "fake_models.py").read_text()
    (tmp_path / "mypkg" / "models.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(dnnbench_command() + ["run", "--models", "mypkg.models:FakeNet,mlp", "--profile",
                                                  "smoke", "--wandb", "disabled", "--no-progress", "--out", "./o"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_rows(tmp_path / "o" / "results.csv")
    assert [(r["model"], r["status"]) for r in rows] == [("mypkg.models:FakeNet", "ok"), ("mlp", "ok")], \
        [r["message"] for r in rows]


def test_schema_2_files_still_read_and_v3_secondary_metrics_are_gated(tmp_path, capsys):
    old = [c for c in COLUMNS if c not in ("model_args", "data_args", "timed_steps", "train_samples_per_s_spread")]
    v2 = make_row(other_metrics="psnr=20.5 ssim=0.9", schema_version=2)
    frame = load_results(write_csv(tmp_path / "v2.csv", [{k: v2[k] for k in old}], columns=old))
    assert frame.loc[0, "other_metrics"] == {"psnr": {"value": 20.5, "better": None},
                                             "ssim": {"value": 0.9, "better": None}}
    assert frame.loc[0, "model_args"] == "{}"
    write_report([tmp_path / "v2.csv"], tmp_path / "report")
    assert "psnr=20.5" in (tmp_path / "report" / "summary.md").read_text()
    metric = '{{"psnr": {{"better": "max", "value": {}}}}}'
    base = write_csv(tmp_path / "base.csv", [make_row(other_metrics=metric.format(20.0))])
    new = write_csv(tmp_path / "new.csv", [make_row(other_metrics=metric.format(10.0))])
    assert main(["compare", str(base), str(new)]) == 1
    assert "other (psnr)" in capsys.readouterr().out


def test_lightning_shards_data_unless_the_datamodule_does_it_itself():
    import datamodules
    from bench.run import session

    config = RunConfig(model="mlp", datamodule="mnist5k", profile="smoke")
    built = session.build(config)
    assert built.datamodule.shards_itself
    assert not session.make_trainer(config, built, [], None, Path("."))._accelerator_connector \
        .use_distributed_sampler

    class PlainData(datamodules.get("mnist5k")):
        shards_itself = False

    built.datamodule = PlainData()
    assert session.make_trainer(config, built, [], None, Path("."))._accelerator_connector.use_distributed_sampler


def test_no_bench_function_is_over_60_lines():
    import ast

    long = []
    for path in (ROOT / "bench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{path.name}:{node.name} {node.end_lineno - node.lineno + 1} lines")
    assert not long


def test_no_bench_file_is_over_300_lines():
    assert not [f"{p.name} {n}" for p in (ROOT / "bench").rglob("*.py") if (n := len(p.read_text().splitlines())) > 300]


def test_nothing_points_outside_the_repository():
    for path in [ROOT / "README.md", ROOT / "results" / "README.md", *(ROOT / "bench").rglob("*.py")]:
        assert "../shared" not in path.read_text(), path
