"""Inference backends over a batch-size curve: the builders, unsupported reasons, the curve's rows (statuses, speed-up
and drift against eager, a failing backend costing nothing else), inference.csv through the one writer and reader,
the results row unchanged by the flags, compare gating, the report's table and chart, W&B's table."""

import time
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.cli import main
from bench.core.columns import Status
from bench.core.inference_columns import INFERENCE_COLUMNS, INFERENCE_SCHEMA_VERSION, markdown_docs
from bench.report.page import write_report
from bench.results.io import append_inference_rows, load_inference, read_rows
from bench.run import inference_curve as infer_curve
from bench.run.measure import backends
from bench.run.precision import PRECISIONS
from tests.helpers import FAKE, ROOT, quiet_trainer, smoke_model
from tests.results_fixtures import make_row, write_csv

CPU = torch.device("cpu")


def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


@pytest.mark.parametrize("backend", ["eager", "compile", "onnxruntime", "int8"])
def test_each_backend_stands_in_for_the_network_at_any_batch_size(backend):
    net = tiny_net()
    built = backends.build(backend, net, (torch.randn(2, 1, 8, 8),), CPU, "32-true")
    for batch in (1, 5):
        x = torch.randn(batch, 1, 8, 8)
        with torch.no_grad():
            assert torch.allclose(built.module(x), net(x), atol=0.05 if backend == "int8" else 1e-5)
    assert (built.detail != "") == (backend != "eager")


def test_onnxruntime_records_its_provider_and_int8_its_method():
    net, x = tiny_net(), (torch.randn(2, 1, 8, 8),)
    assert "CPUExecutionProvider" in backends.build("onnxruntime", net, x, CPU, "32-true").detail
    assert "torch.ao dynamic int8 (2 Linear layers" in backends.build("int8", net, x, CPU, "32-true").detail


@pytest.mark.slow  # AOTInductor compiles C++: tens of seconds on 2 cores
def test_export_runs_an_aotinductor_package_with_a_dynamic_batch():
    net = tiny_net()
    built = backends.build("export", net, (torch.randn(2, 1, 8, 8),), CPU, "32-true")
    x = torch.randn(1, 1, 8, 8)
    assert torch.allclose(built.module(x), net(x), atol=1e-5) and built.export_s > 0 and built.compile_s > 0


@pytest.mark.parametrize("backend, net, precision, reason", [
    ("int8", nn.Sequential(nn.Conv2d(1, 2, 3)), "32-true", "no Linear/LSTM/GRU layer"),
    ("export", tiny_net(), "bf16-mixed", "this run's precision is bf16-mixed"),
    ("onnxruntime", tiny_net(), "16-mixed", "this run's precision is 16-mixed"),
])
def test_a_backend_that_cannot_take_a_network_says_why(backend, net, precision, reason):
    with pytest.raises(backends.Unsupported, match=reason):
        backends.build(backend, net, (torch.randn(2, 1, 8, 8),), CPU, precision)


class BakedBatch(nn.Module):
    """A network whose graph keeps the example's batch (as the conditional GAN's label cycle does)."""

    def forward(self, x):
        return x.reshape(2, -1)[: len(x)] * 2  # export specialises the batch to the example's 2


def test_an_export_that_bakes_in_the_batch_is_unsupported_with_the_reason():
    with pytest.raises(backends.Unsupported, match="does not run at another batch size|another output shape"):
        backends.build("onnxruntime", BakedBatch(), (torch.randn(2, 3),), CPU, "32-true")


@pytest.mark.slow  # the dynamo exporter on a transformer: ~15 s on 2 cores
def test_onnx_takes_a_decoder_at_any_token_length():
    model = smoke_model("transformer").eval()
    built = backends.build("onnxruntime", model.net, model.example_input(2), CPU, "32-true")
    src, tgt = model.example_input(3)
    with torch.no_grad():
        assert torch.allclose(built.module(src, tgt[:, :2]), model.net(src, tgt[:, :2]), atol=1e-4)
    assert "dynamo exporter" in built.detail


def test_int8_leaves_the_fused_transformer_layers_in_float():
    model = smoke_model("transformer").eval()
    built = backends.build("int8", model.net, model.example_input(2), CPU, "32-true")
    with torch.no_grad():
        assert built.module(*model.example_input(3)).shape == model.net(*model.example_input(3)).shape


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
    return main(["run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled", "--no-progress",
                 "--out", str(out), *flags])


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


# ----------------------------------------------------------------------------------------------- read back
def point(backend, batch, status="ok", **values):
    row = {c: "" for c in INFERENCE_COLUMNS}
    row.update(model="cnn", datamodule="mnist5k", device="cpu", num_devices=1, num_nodes=1, precision="32-true",
               compile="off", batch_size=128, profile="quick", seed=0, repeat=0, run_id="cnn-r0", backend=backend,
               infer_batch_size=batch, status=status, schema_version=INFERENCE_SCHEMA_VERSION, metric_name="acc",
               metric_direction="max")
    if status == "ok":
        row.update(infer_samples_per_s=1000.0 * batch, latency_p50_ms=1.0, latency_p95_ms=1.5, metric_value=0.98,
                   metric_drift=0.0, speedup_vs_eager=1.0)
    else:
        row.update(message="no Linear/LSTM/GRU layer")
    return row | values


def sweep_folder(path: Path, points: list[dict]) -> Path:
    path.mkdir()
    write_csv(path / "results.csv", [make_row()])
    append_inference_rows(path / "inference.csv", points)
    return path


CURVE = [point("eager", 1), point("eager", 16), point("onnxruntime", 1), point("onnxruntime", 16),
         point("int8", 1, "unsupported"), point("int8", 16, "unsupported")]


def test_inference_csv_round_trips_and_a_rerun_runs_rows_win(tmp_path):
    folder = sweep_folder(tmp_path / "s", CURVE)
    append_inference_rows(folder / "inference.csv", [point("eager", 1, infer_samples_per_s=7.0)])  # --resume re-ran
    frame = load_inference(folder / "inference.csv")
    assert len(frame) == 6 and frame.loc[frame["backend"].eq("eager") & frame["infer_batch_size"].eq(1),
                                         "infer_samples_per_s"].tolist() == [7.0]
    assert frame["config_label"].iloc[0] == "mnist5k cpu 32-true bs128 quick"


def test_compare_exits_1_when_a_backend_slows_down_and_0_when_unchanged(tmp_path, capsys):
    base = sweep_folder(tmp_path / "base", CURVE)
    same = sweep_folder(tmp_path / "same", CURVE)
    slower = sweep_folder(tmp_path / "new", [p | {"infer_samples_per_s": 500.0} if p["backend"] == "onnxruntime"
                                             and p["infer_batch_size"] == 16 else p for p in CURVE])
    assert main(["compare", str(base / "results.csv"), str(same / "results.csv")]) == 0
    assert main(["compare", str(base / "results.csv"), str(slower / "results.csv")]) == 1
    out = capsys.readouterr().out
    assert "onnxruntime infer-bs16" in out and "REGRESSION" in out


def test_report_has_the_backend_table_and_the_latency_throughput_chart(tmp_path):
    folder = sweep_folder(tmp_path / "s", CURVE)
    write_report([folder], folder)
    summary = (folder / "summary.md").read_text()
    assert "## Inference backends" in summary and "no Linear/LSTM/GRU layer" in summary
    assert (folder / "inference_curves.png").stat().st_size > 0
    assert "inference_curves.png" in (folder / "index.html").read_text()


def test_wandb_gets_the_inference_table(tmp_path):
    from bench.integrations import wandb_log

    folder = sweep_folder(tmp_path / "s", CURVE)
    table = wandb_log.inference_table(folder / "results.csv")
    assert len(table.data) == 6 and "speedup_vs_eager" in table.columns
    assert wandb_log.inference_table(write_csv(tmp_path / "results.csv", [make_row()])) is None


def test_results_readme_documents_the_inference_columns():
    text = (ROOT / "results" / "README.md").read_text()
    generated = text.split("tests/test_infer_curve.py checks it -->\n")[1].split("<!-- end of inference columns")[0]
    assert generated == markdown_docs(), "results/README.md is stale: python -m bench.core.inference_columns"


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["eager", "compile", "export", "onnxruntime", "int8"])
def test_each_backend_on_a_gpu_runs_or_names_what_it_needs(backend):
    cuda = torch.device("cuda")
    net = tiny_net().to(cuda)
    try:
        built = backends.build(backend, net, (torch.randn(2, 1, 8, 8, device=cuda),), cuda, "32-true")
    except backends.Unsupported as exc:
        assert backend in ("onnxruntime", "int8") and ("onnxruntime-gpu" in str(exc) or "torchao" in str(exc))
        return
    x = torch.randn(3, 1, 8, 8, device=cuda)
    with torch.no_grad():
        out = built.module(x)
    assert out.device.type == "cuda" and torch.allclose(out, net(x), atol=0.05 if backend == "int8" else 1e-3)
    if backend == "onnxruntime":
        assert "CUDAExecutionProvider" in built.detail or "TensorrtExecutionProvider" in built.detail
