"""bench/run/session.py: settings applied before measuring, and what the Trainer leaves to the datamodule."""

from pathlib import Path

import torch

from bench.core import config
from bench.core.config import RunConfig


def test_the_session_applies_cudnn_tf32_before_measuring():
    from bench.run import session

    class Built:
        model = torch.nn.Linear(2, 2)
        notes: list = []

    before = torch.backends.cudnn.allow_tf32
    try:
        session.apply_settings(config.RunConfig(model="mlp", datamodule="mnist5k", cudnn_tf32=False), Built())
        assert torch.backends.cudnn.allow_tf32 is False
        session.apply_settings(config.RunConfig(model="mlp", datamodule="mnist5k"), Built())
        assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cudnn.allow_tf32 = before
        torch.set_float32_matmul_precision("highest")


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
