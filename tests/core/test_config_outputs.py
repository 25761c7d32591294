"""bench/core/config.py: labels, run ids, identities, cells and `reproduce` lines of varied configs, and the order of
planned sweeps, byte for byte as main's generated RunConfig gave them (config_outputs.json was written from main's
code at 8a49999 by `outputs_of` / `planned_ids` below, before RunConfig became a written dataclass)."""

import json
from pathlib import Path

import pytest

from bench.core.config import RunConfig

EXPECTED = json.loads((Path(__file__).parent / "config_outputs.json").read_text())
CASES = [
    {"model": "mlp", "datamodule": "mnist5k"},
    {"model": "cnn", "datamodule": "mnist5k", "precision": "bf16-mixed", "compile": True,
     "compile_mode": "max-autotune", "batch_size": 64},
    {"model": "cnn", "datamodule": "mnist5k", "compile": False, "compile_mode": "max-autotune"},
    {"model": "resnet", "datamodule": "synthetic", "device": "cuda", "num_devices": 2, "num_nodes": 2,
     "precision": "16-mixed", "time_limit_s": 123.5, "peak_tflops": 989.0},
    {"model": "lstm", "datamodule": "seqmnist", "batch_size": 256, "batch_size_mode": "auto", "seed": 3, "repeat": 2},
    {"model": "resnet", "datamodule": "cifar10", "memory_format": "channels_last", "matmul_precision": "high",
     "cudnn_benchmark": True, "cudnn_tf32": False, "size": "large"},
    {"model": "mlp", "datamodule": "mnist5k", "profile": "full", "stop_at_target": "on"},
    {"model": "mlp", "datamodule": "mnist5k", "profile": "quick", "stop_at_target": "off"},
    {"model": "mlp", "datamodule": "mnist5k", "profile": "smoke", "stop_at_target": "off"},
    {"model": "tests.fake_models:FakeNet", "datamodule": "synthetic", "model_args": {"lr": 0.01, "hidden": [3, 4]},
     "data_args": {"shape": (1, 8, 8), "noise": True}},
    {"model": "transformer", "datamodule": "seq2seq", "infer_backends": "eager,onnxruntime",
     "infer_batch_sizes": "1,8", "wandb": "offline", "wandb_project": "mine", "wandb_entity": "team",
     "sweep_name": "s1"},
]
PLANS = [
    ["--models", "mlp,cnn", "--precisions", "bf16-mixed,32-true", "--compile", "off,on", "--compile-mode",
     "default,max-autotune", "--repeats", "2", "--seed", "5"],
    ["--models", "mlp", "--sizes", "classic,large", "--data", "mnist5k,synthetic", "--devices", "cpu,cpu:2",
     "--batch-sizes", "16,32"],
    ["--models", "mlp,cnn", "--sizes", "classic,large", "--profile", "smoke", "--stop-at-target", "on"],
    ["--models", "cnn", "--batch-sizes", "auto,8", "--compile", "on", "--compile-mode", "reduce-overhead",
     "--channels-last", "--matmul-precision", "medium", "--model-arg", "lr=0.1", "--num-nodes", "1"],
]


def outputs_of(fields: dict) -> dict:
    config = RunConfig(**fields)
    return {"label": config.label(), "run_id": config.run_id, "reproduce": config.reproduce(),
            "key": list(config.key()), "columns": json.dumps(config.columns(), sort_keys=True, default=str),
            "fields": json.dumps(config.to_dict(), sort_keys=True, default=str)}


def planned_ids(argv: list[str]) -> list[str]:
    from bench.cli import build_parser
    from bench.plan.planner import plan

    args = build_parser().parse_args(["run", "--out", "/tmp/dnnbench-plan-only", "--wandb", "disabled", *argv])
    return [f"{config.run_id} | {config.label()} | {json.dumps(config.to_dict(), sort_keys=True, default=str)}"
            for config in plan(args).configs]


@pytest.mark.parametrize("index", range(len(CASES)))
def test_a_config_reads_as_it_did_on_main(index):
    assert outputs_of(CASES[index]) == EXPECTED["configs"][index]


def repeat_of(planned: str) -> int:
    return json.loads(planned.split(" | ", 2)[2])["repeat"]


@pytest.mark.parametrize("index", range(len(PLANS)))
def test_a_sweep_plans_the_same_runs_in_the_same_order_as_on_main(index):
    """Since main 33d116a the repeats are the outermost axis (every config's first process, then every config's
    second: bench/core/axes.py); the rest of the order is main's."""
    expected = sorted(EXPECTED["plans"][index], key=repeat_of)  # stable: main's order within each repeat
    assert planned_ids(PLANS[index]) == expected
    if index == 0:
        assert [repeat_of(p) for p in expected[:3]] == [0, 0, 0] != [repeat_of(p) for p in EXPECTED["plans"][0][:3]]
