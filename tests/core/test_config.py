"""bench/core/config.py: the one config identity, run keys, labels and run ids (all derived from bench/core/axes.py)."""

from bench.core import config as cfg
from bench.core.config import RunConfig


def test_identity_separates_batch_sizes_and_arguments_but_not_repeats():
    a = RunConfig(model="mlp", datamodule="mnist5k", batch_size=32)
    assert cfg.identity(a.columns()) != cfg.identity(RunConfig(model="mlp", datamodule="mnist5k",
                                                               batch_size=64).columns())
    assert cfg.identity(a.columns()) != cfg.identity(RunConfig(model="mlp", datamodule="mnist5k", batch_size=32,
                                                               model_args={"lr": 0.01}).columns())
    assert cfg.identity(a.columns()) == cfg.identity(RunConfig(model="mlp", datamodule="mnist5k", batch_size=32,
                                                               seed=1, repeat=1).columns())
    assert a.key() != RunConfig(model="mlp", datamodule="mnist5k", batch_size=32, seed=1, repeat=1).key()
    row = {k: str(v) for k, v in a.columns().items()}  # as read back from the CSV
    assert cfg.run_key(row) == a.key()


def test_run_ids_and_labels_leave_default_settings_out():
    plain = RunConfig(model="mlp", datamodule="mnist5k", batch_size=32)
    assert plain.run_id == "mlp-mnist5k-cpu-32-true-eager-bs32-s0-r0"
    assert plain.label() == "mlp mnist5k cpu 32-true bs32 quick"
    tuned = RunConfig(model="mlp", datamodule="mnist5k", batch_size=32, matmul_precision="high", size="large")
    assert tuned.run_id.startswith("mlp-large-mnist5k") and len(tuned.run_id.split("-")[-1]) == 8
    assert tuned.label() == "mlp mnist5k cpu 32-true matmul=high bs32 large quick"
    # a run that trains its epochs beside the default one that stops at the target keeps its own log and artifacts
    fixed = RunConfig(model="mlp", datamodule="mnist5k", batch_size=32, stop_at_target="off")
    assert fixed.run_id != plain.run_id and fixed.run_id.startswith("mlp-mnist5k-cpu-32-true-eager-bs32-s0-r0-")
    same = RunConfig(model="mlp", datamodule="mnist5k", batch_size=32, stop_at_target="on")  # what quick does anyway
    assert same.key() == plain.key() and same.run_id == plain.run_id
