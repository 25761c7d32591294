"""bench/run/inference_curve.py: the curve's rows (statuses, speed-up and drift against eager, quality through each
backend, a failing backend costing nothing else) and a sweep's inference.csv."""

import time
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.core.columns import Status
from bench.core.inference_columns import INFERENCE_COLUMNS, INFERENCE_SCHEMA_VERSION
from bench.results.io import load_inference, read_rows
from bench.run import inference_curve as infer_curve
from bench.run.measure import backends
from bench.run.precision import PRECISIONS
from tests.helpers import quiet_trainer, smoke_model, sweep_args

CPU = torch.device("cpu")


# ----------------------------------------------------------------------------------------------- the curve
def fake_curve(model, backends_text="eager,onnxruntime,int8", sizes="1,4", tester=None, deadline=None):
    from tests.helpers import fake_config

    config = fake_config(infer_backends=backends_text, infer_batch_sizes=sizes)
    return infer_curve.Curve(config, model.eval(), CPU, PRECISIONS["32-true"],
                             lambda batch: (model.example_input(batch),), tester, ("acc", "max"),
                             time.monotonic() + 600 if deadline is None else deadline, budget_s=0.05)


def mlp_with_test():
    """A smoke mlp and its own test pass on mnist5k's test split (two batches)."""
    import datamodules
    import lightning_modules

    datamodule = datamodules.get("mnist5k")(batch_size=64)
    model = lightning_modules.build_model(lightning_modules.get("mlp"), datamodule, smoke=True)
    tester = infer_curve.tester(lambda: quiet_trainer(limit_test_batches=2), datamodule, "acc")
    return model, tester


@pytest.mark.integration
def test_the_curve_has_one_row_per_backend_and_batch_size_with_quality_through_each():
    model, tester = mlp_with_test()
    rows = infer_curve.inference_rows(fake_curve(model, "int8,eager,onnxruntime", tester=tester))
    assert [(r["backend"], r["infer_batch_size"]) for r in rows] == [
        (b, s) for b in ("eager", "int8", "onnxruntime") for s in (1, 4)]  # eager first: the others' baseline
    assert all(r["status"] == Status.OK and r["infer_samples_per_s"] > 0 and r["latency_samples"] >= 10
               for r in rows)
    eager = rows[0]["metric_value"]
    assert 0 <= eager <= 1 and all(r["metric_value"] is not None for r in rows)
    assert abs(rows[-1]["metric_drift"]) <= 0.002  # onnxruntime: the same network to float rounding
    assert all(r["speedup_vs_eager"] == pytest.approx(r["infer_samples_per_s"] / rows[i % 2]["infer_samples_per_s"])
               for i, r in enumerate(rows))
    assert all(r["run_id"] and r["schema_version"] == INFERENCE_SCHEMA_VERSION for r in rows)


@pytest.mark.integration
def test_a_failing_backend_costs_only_its_own_rows(monkeypatch):
    def broken(*args):
        raise RuntimeError("backend exploded")

    monkeypatch.setitem(backends.BUILDERS, "onnxruntime", broken)
    model = smoke_model("mlp")
    rows = infer_curve.inference_rows(fake_curve(model, "eager,onnxruntime,int8", sizes="2"))
    assert [(r["backend"], r["status"]) for r in rows] == [
        ("eager", Status.OK), ("onnxruntime", Status.ERROR), ("int8", Status.OK)]
    assert "backend exploded" in rows[1]["message"]


def test_a_model_without_a_net_is_timed_whole_and_says_why_there_is_no_metric():
    model = smoke_model("dbn")
    rows = infer_curve.inference_rows(fake_curve(model, "eager,int8", sizes="2", tester=lambda m: 0.5))
    assert [r["status"] for r in rows] == [Status.OK, Status.OK]
    assert all(r["metric_value"] is None and "does not go through a `net`" in r["message"] for r in rows)


@pytest.mark.integration
def test_a_test_that_reloads_the_tested_weights_runs_through_every_backend():
    import datamodules
    from tests.fake_models import FakeNet

    class ReloadsBest(FakeNet):  # as the DQN's test reloads its best weights into `net` first
        def on_test_start(self):
            self.net.load_state_dict(self.best)

    model = ReloadsBest()
    model.best = {k: v.clone() for k, v in model.net.state_dict().items()}
    data = datamodules.get("synthetic")(shape=(1, 8, 8), num_classes=3, num_samples=64, batch_size=16)
    tester = infer_curve.tester(lambda: quiet_trainer(limit_test_batches=2), data, "acc")
    rows = infer_curve.inference_rows(fake_curve(model, "eager,onnxruntime,int8", sizes="2", tester=tester))
    assert all(r["metric_value"] is not None for r in rows), [r["message"] for r in rows]
    model.best = {k: v + 1 for k, v in model.best.items()}  # other weights: refused, the timing kept
    rows = infer_curve.inference_rows(fake_curve(model, "int8", sizes="2", tester=tester))
    assert rows[0]["status"] == Status.OK and "loads others" in rows[0]["message"]


def test_nothing_starts_past_the_deadline():
    rows = infer_curve.inference_rows(fake_curve(smoke_model("mlp"), "eager,int8", deadline=time.monotonic() - 1))
    assert {r["status"] for r in rows} == {Status.TIMEOUT}


# ----------------------------------------------------------------------------------------------- the sweep
def sweep(out: Path, *flags: str) -> int:
    return main(sweep_args(out, *flags))


@pytest.mark.integration
def test_a_sweep_writes_inference_csv_and_leaves_the_results_row_as_it_was(tmp_path):
    assert sweep(tmp_path / "plain") == 0
    assert not (tmp_path / "plain" / "inference.csv").exists()  # the default: today's sweep
    assert sweep(tmp_path / "curve", "--infer-backends", "eager,int8,onnxruntime", "--infer-batch-sizes", "1,4") == 0
    plain, curve = read_rows(tmp_path / "plain" / "results.csv")[0], read_rows(tmp_path / "curve" / "results.csv")[0]
    for column in ("status", "params", "epochs", "steps", "flops_per_sample", "metric_value", "batch_size"):
        assert plain[column] == curve[column], column
    assert "inference" not in curve["message"]
    assert "--infer-backends eager,int8,onnxruntime" in curve["reproduce"]
    frame = load_inference(tmp_path / "curve" / "inference.csv")
    assert list(zip(frame["backend"], frame["infer_batch_size"].astype(int), frame["status"])) == [
        (b, s, "ok") for b in ("eager", "int8", "onnxruntime") for s in (1, 4)]
    assert (tmp_path / "curve" / "inference.csv").read_text().splitlines()[0] == ",".join(INFERENCE_COLUMNS)


def test_bad_backend_names_and_batch_sizes_stop_the_plan(tmp_path, capsys):
    assert sweep(tmp_path / "a", "--infer-backends", "eager,tensorrt") == 2
    assert "--infer-backends takes a comma list" in capsys.readouterr().err
    assert sweep(tmp_path / "b", "--infer-batch-sizes", "1,0") == 2


@pytest.mark.parametrize("flag, value, says", [
    ("--infer-backends", "eager,eager", "names eager more than once"),
    ("--infer-backends", "eager,", "takes a comma list"),
    ("--infer-batch-sizes", "4,4", "names 4 more than once"),
    ("--infer-batch-sizes", "", "is empty"),
    ("--infer-batch-sizes", "1,,4", "takes a comma list"),
])
def test_repeated_or_empty_backend_and_batch_size_values_exit_2(tmp_path, capsys, flag, value, says):
    assert sweep(tmp_path / "a", flag, value) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


def test_a_host_out_of_memory_in_the_curve_is_oom_not_error():
    exc = RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried "
                       "to allocate 6272000000000 bytes")
    assert infer_curve.failure(exc) == Status.OOM and infer_curve.failure(RuntimeError("boom")) == Status.ERROR
