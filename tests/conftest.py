import os
import tempfile

import pytest
import torch

# Two cores here: keep torch from oversubscribing when pytest and its children share them.
torch.set_num_threads(min(2, os.cpu_count() or 1))
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ["DNNBENCH_STRICT_COLUMNS"] = "1"  # a row naming a column the table lacks is an error here (children too)
# Instruments trained once (the GAN's feature classifier) are cached per test session, not in the user's home.
os.environ["DNNBENCH_CACHE"] = tempfile.mkdtemp(prefix="dnnbench-cache-")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_collection_modifyitems(config, items):
    """`gpu` tests skip (with the reason) where CUDA is absent, even when `-m gpu` selects them."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# ------------------------------------------------------------------------ shared by the test files (import them)
FAKE = "tests.fake_models:FakeNet"  # the runner tests' model, by import path as a user's own would be


def fake_config(mode="ok", **overrides):
    """A smoke config of the fake model on small synthetic data; `mode` injects a failure (tests/fake_models.py)."""
    from bench.core.config import RunConfig

    fields = dict(model=FAKE, datamodule="synthetic", batch_size=16, profile="smoke", time_limit_s=120,
                  model_args={"mode": mode}, data_args={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 64})
    fields.update(overrides)
    return RunConfig(**fields)


def quiet_trainer(**kwargs):
    """A CPU Trainer that logs, checkpoints, summarises and sanity-checks nothing (tests override any of it)."""
    import lightning as L

    options = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, num_sanity_val_steps=0)
    return L.Trainer(**(options | kwargs))


def smoke_model(name, **kwargs):
    """The registered model `name` at its classic size's smoke shrink (as the smoke profile builds it)."""
    import lightning_modules

    cls = lightning_modules.get(name)
    return cls(**(cls.bench.classic.smoke_model | kwargs))
