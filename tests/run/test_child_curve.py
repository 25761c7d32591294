"""bench/run/child.py: the inference curve belongs to its run. A run that ends during its curve (killed at its time
limit, crashed, or a backend that fails) keeps the points it measured and its row names the backends that did not
finish (issue 33, item 4)."""

from pathlib import Path

import pytest

from bench.core.config import RunConfig
from bench.core.row import RunRow
from bench.launch.child_process import run_child
from bench.run.child import with_inference

CONFIG = RunConfig(model="mlp", datamodule="mnist5k", infer_backends="eager,export,int8")
EAGER = {"backend": "eager", "infer_batch_size": 1, "status": "ok"}
EXPORT = {"backend": "export", "infer_batch_size": 1, "status": "ok"}


def test_a_curve_that_fails_midway_keeps_its_points_and_says_so():
    saved = []

    def curve(progress):
        progress([EAGER], ["export", "int8"])
        raise RuntimeError("the process is going down")

    row = with_inference(RunRow(CONFIG, message="trained"), curve, saved.append)
    assert row.inference == (EAGER,)
    assert row.message == "trained; inference backends failed: the process is going down"
    [partial] = saved  # what a kill at this moment leaves on disk
    assert partial.inference == (EAGER,) and "inference backends not finished: export, int8" in partial.message


def test_a_curve_that_finishes_leaves_no_unfinished_note():
    saved = []

    def curve(progress):
        progress([EAGER], ["export"])
        progress([EAGER, EXPORT], [])
        return [EAGER, EXPORT]

    row = with_inference(RunRow(CONFIG), curve, saved.append)
    assert row.inference == (EAGER, EXPORT) and row.message == ""
    assert len(saved) == 1  # only the partial state is saved; the finished row is the caller's


@pytest.mark.integration
def test_a_run_killed_during_its_curve_keeps_the_eager_points_and_names_the_unfinished_backend(tmp_path: Path):
    config = RunConfig(model="tests.fake_models:FakeNet", datamodule="synthetic", batch_size=16, profile="smoke",
                       time_limit_s=15, model_args={"mode": "hang_in_int8"}, infer_backends="eager,int8",
                       data_args={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 64})
    row = run_child(config, tmp_path)
    assert row.status == "ok", row.message
    assert [(point["backend"], point["status"]) for point in row.inference] == [("eager", "ok"), ("int8", "timeout")]
    assert "killed at its 15 s time limit" in row.inference[1]["message"]  # unmeasured: cut by its own limit
    assert "inference backends not finished: int8" in row.message
    assert "killed at its 15 s time limit after its row was measured" in row.message
