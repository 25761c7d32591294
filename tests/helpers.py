"""What several test files share: the repository root, the fake model by import path, a fake run's config and a
sweep's arguments, a quiet CPU Trainer, a registered model at its smoke shrink, a short fit of the fake model, a
Python child's output and the one-line error rule (import them from here; conftest.py holds only fixtures)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: children run here, files are read from here
REFERENCE_RESULTS = sorted((ROOT / "results" / "reference").rglob("results.csv"))  # committed schema-3 files
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


def sweep_args(out, *extra):
    """`dnnbench run` of the fake model in the smoke profile into `out`, W&B and the progress display off."""
    return ["run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled", "--no-progress", "--out", str(out),
            *extra]


def one_line_error(err: str, fragment: str) -> None:
    """Bad input and faults are one line on stderr naming the reason, never a traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dnnbench: error:"), err
    assert fragment in lines[0], lines[0]


def run_python(code: str) -> str:
    """The stdout of `python -c code` run in the repository (a fresh interpreter: what it imports is its own)."""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
