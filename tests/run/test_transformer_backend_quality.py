"""The transformer's greedy decode through an inference backend standing in for its network: its quality is
measured (eager: the model's own test value), not 'no attribute encode'."""

import time

import lightning as L
import torch

import datamodules
import lightning_modules
from bench.core.columns import Status
from bench.core.config import RunConfig
from bench.run import inference_curve
from bench.run.precision import PRECISIONS

CPU = torch.device("cpu")


def test_transformer_quality_through_eager_equals_its_own_test():
    torch.manual_seed(0)
    datamodule = datamodules.get("seq2seq")(batch_size=32)
    model = lightning_modules.build_model(lightning_modules.get("transformer"), datamodule, smoke=True).eval()

    def trainer():
        return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_test_batches=2)

    tester = inference_curve.tester(trainer, datamodule, "token_acc")  # not 0 untrained
    own = tester(model)
    config = RunConfig(model="transformer", datamodule="seq2seq", batch_size=32, profile="smoke",
                       infer_backends="eager", infer_batch_sizes="2")
    curve = inference_curve.Curve(config, model, CPU, PRECISIONS["32-true"], model.example_input, tester,
                                  ("token_acc", "max"), time.monotonic() + 600, budget_s=0.05)
    [row] = inference_curve.inference_rows(curve)
    assert row["status"] == Status.OK and "failed" not in row["message"], row["message"]
    assert own > 0 and row["metric_value"] == own
