"""What several test files share: the repository root, the fake model by import path, a fake run's config, a quiet
CPU Trainer, a registered model at its smoke shrink and a short fit of the fake model (import them from here)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: children run here, files are read from here
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


def fit_fake(callbacks, max_steps, mode="ok", num_samples=64):
    """The fake model fitted on synthetic data for `max_steps` steps (-1 epochs) with the speed window's FetchTimer."""
    import datamodules
    from bench.run.measure import speed
    from tests.fake_models import FakeNet

    dm = datamodules.get("synthetic")(batch_size=4, shape=(1, 8, 8), num_classes=3, num_samples=num_samples)
    trainer = quiet_trainer(max_steps=max_steps, max_epochs=-1, limit_val_batches=0, callbacks=callbacks,
                            profiler=speed.FetchTimer())
    trainer.fit(FakeNet(mode=mode), dm)
    return trainer
