"""bench/run/wandb_run.py: a run's per-step W&B history is logged while the fit runs, never while the speed window's
clock runs (the losses stay on the device until a sub-window, an epoch or the fit has ended), and its host time is
left out of the time to target."""

import time
from types import SimpleNamespace

import lightning as L
from lightning.pytorch.loggers import Logger

from bench.run import wandb_run
from bench.run.measure.speed import SpeedWindow
from datamodules.synthetic import Synthetic
from tests.fake_models import FakeNet


class Recorder:
    """A W&B run's `log` as the callback sees it: each call with the speed window's state at that moment."""

    def __init__(self, window: SpeedWindow):
        self.window, self.calls = window, []

    def log(self, entry):
        self.calls.append((entry, self.window._open is not None, self.window.steps))
        time.sleep(0.002)  # W&B's own host time, which the time to target must not count


class RecordingLogger(Logger):
    def __init__(self, experiment):
        super().__init__()
        self._experiment = experiment

    @property
    def experiment(self):
        return self._experiment

    name, version = "recording", 0

    def log_metrics(self, metrics, step=None):
        pass

    def log_hyperparams(self, params, *args, **kwargs):
        pass


def test_step_history_is_logged_during_the_fit_and_outside_the_timed_windows():
    window = SpeedWindow(warmup=2, timed=20, profiled=0, stop=False)
    recorder, watch = Recorder(window), SimpleNamespace(excluded_s=0.0)  # the QualityWatch's clock, as it is read
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=3, logger=RecordingLogger(recorder),
                        callbacks=[window, wandb_run.history(window, watch)], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(FakeNet(), Synthetic(batch_size=4, seed=0, shape=(1, 8, 8), num_classes=3, num_samples=96))
    total = trainer.global_step
    steps = [entry["trainer/global_step"] for entry, _, _ in recorder.calls]
    assert total >= 30 and steps == list(range(1, total + 1))  # every step of the 3 epochs, once, in order
    assert all("step/loss" in entry for entry, _, _ in recorder.calls)
    assert sum("step/samples_per_s" in entry for entry, _, _ in recorder.calls) == total - 1
    assert not any(open_ for _, open_, _ in recorder.calls), "logged while a timed window's clock ran"
    assert len({seen for _, _, seen in recorder.calls}) >= 4  # in several flushes as the fit went, not once at its end
    assert min(seen for _, _, seen in recorder.calls) < total
    assert watch.excluded_s >= 0.002 * total  # the logging's host time, left out of the time to target
