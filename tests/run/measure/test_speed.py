"""bench/run/measure/speed.py: the speed window, the data-wait and host columns, device-side NaN checks, where
inference and FLOPs run. GPU-only checks carry the `gpu` marker."""

import time

import lightning as L
import pytest
import torch

import datamodules
from bench.core.config import RunConfig
from bench.core.row import RunRow
from bench.results.io import flatten
from bench.run import session
from bench.run.measure import cost, inference, quality, speed
from datamodules.base import DeviceBatches
from tests.fake_models import FakeNet
from tests.helpers import fit_fake, quiet_trainer


def measured_row(config, tmp_path):
    """The session's measured pieces as the row's cells (flattened as the child does, through results_io)."""
    return flatten(RunRow(config, pieces=session.train_and_measure(config, tmp_path).pieces))


def test_speed_window_times_a_fixed_number_of_steps_then_profiles_and_stops():
    window = speed.SpeedWindow(warmup=3, timed=20, profiled=4)
    trainer = fit_fake([window], max_steps=500)
    result = window.result()
    # 16 batches an epoch: steps 4-13 (10), 14-16 and 17-23 (one sub-window over the epoch's end): 20, then done
    assert result.timed_steps == 20 and [steps for steps, _, _ in window.windows] == [10, 10]
    assert trainer.global_step < 500  # it stopped the fit itself
    assert window.profiled_steps == 4 and result.device_samples_per_s > 0
    assert result.train_samples_per_s > 0 and 0 <= result.data_wait_fraction <= 1
    assert result.device_busy_fraction == pytest.approx(result.train_samples_per_s / result.device_samples_per_s)


class SlowValidation(FakeNet):
    """Validation takes VALIDATION_S: no sub-window may hold it."""

    VALIDATION_S = 0.2

    def validation_step(self, batch, batch_idx):
        time.sleep(self.VALIDATION_S)
        return super().validation_step(batch, batch_idx)


def test_sub_windows_are_equally_long_and_pause_over_epoch_ends_and_validation():
    """Sub-windows cut short at epoch ends (1-9 steps) spread far wider than 10-step ones (issue 31): every one is
    WINDOW_STEPS steps, its clock stopped over the epoch's end and its validation."""
    window = speed.SpeedWindow(warmup=3, timed=40, profiled=0)
    dm = datamodules.get("synthetic")(batch_size=4, shape=(1, 8, 8), num_classes=3, num_samples=28)  # 7 a epoch
    trainer = quiet_trainer(max_epochs=-1, max_steps=200, limit_val_batches=1, callbacks=[window],
                            profiler=speed.FetchTimer())
    started = time.perf_counter()
    trainer.fit(SlowValidation(), dm)
    elapsed = time.perf_counter() - started
    assert [steps for steps, _, _ in window.windows] == [speed.WINDOW_STEPS] * 4 and trainer.current_epoch >= 5
    timed = sum(seconds for _, _, seconds in window.windows)
    assert timed < elapsed - 5 * SlowValidation.VALIDATION_S  # 6 validations ran inside the window, none timed


def test_a_fit_that_ends_mid_window_leaves_a_short_one_that_the_rate_leaves_out_beside_full_ones():
    window = speed.SpeedWindow(warmup=2, timed=100, profiled=0)
    fit_fake([window], max_steps=2 + 25)
    assert [steps for steps, _, _ in window.windows] == [10, 10, 5]
    full = [n / s for steps, n, s in window.windows if steps == speed.WINDOW_STEPS]
    assert window.result().train_samples_per_s == pytest.approx(sum(full) / 2)
    alone = speed.SpeedWindow(warmup=2, timed=100, profiled=0)
    fit_fake([alone], max_steps=2 + 5)  # no full sub-window: the short one is the rate
    assert [steps for steps, _, _ in alone.windows] == [5] and alone.result().train_samples_per_s > 0


def test_a_cpu_window_may_stop_early_once_it_has_20_steps(monkeypatch):
    monkeypatch.setattr(speed, "CPU_WINDOW_S", 0.0)  # every step "slow": the time rule applies at 20 steps
    window = speed.SpeedWindow(warmup=2, timed=100, profiled=0)
    fit_fake([window], max_steps=500, num_samples=400)  # 100 batches an epoch: no epoch end inside the window
    assert window.result().timed_steps == 20 and len(window.windows) == 2


def test_the_window_ends_on_data_with_fewer_batches_an_epoch_than_a_sub_window():
    window = speed.SpeedWindow(warmup=3, timed=20, profiled=2)
    trainer = fit_fake([window], max_steps=500, num_samples=8)  # 2 batches an epoch: only epoch ends close windows
    result = window.result()
    assert 20 <= result.timed_steps <= 22 and result.train_samples_per_s > 0
    assert window.profiled_steps == 2 and trainer.global_step < 40  # it stopped the fit itself, long before 500


def test_a_window_timed_in_the_quality_fit_only_profiles_in_its_own_fit():
    """The quality fit gave the whole window: the fit of its own runs warm-up and profiled steps, no timed ones."""
    window = speed.SpeedWindow(warmup=3, timed=20, profiled=0, stop=False)
    first = fit_fake([window], max_steps=60)  # rides along: times 20+ steps, never stops the fit
    assert first.global_step == 60 and window.timing_done and window.device_seconds is None
    timed = window.timed_steps()
    steps = window.carry_on(warmup=2, profiled=4)
    assert steps == 2 + 4
    second = fit_fake([window], max_steps=steps)
    assert second.global_step == 6 and window.profiled_steps == 4 and window.timed_steps() == timed
    result = window.result()
    assert result.device_samples_per_s > 0 and result.timed_steps == timed


def test_a_quality_fit_too_short_for_the_window_leaves_the_rest_to_its_own_fit():
    """12 steps of a quality fit (3 warm-up, 9 timed): the fit of its own warms up again, times the 11+ missing
    steps and profiles; the timed sub-windows of both fits make the rate."""
    window = speed.SpeedWindow(warmup=3, timed=20, profiled=0, stop=False)
    fit_fake([window], max_steps=12)
    assert window.timed_steps() == 9 and not window.timing_done
    steps = window.carry_on(warmup=3, profiled=2)
    assert steps == 3 + 3 * 11 + 2
    second = fit_fake([window], max_steps=steps)
    assert window.timing_done and 20 <= window.timed_steps() < 20 + 10
    assert window.profiled_steps == 2 and second.global_step < steps  # the window stopped it
    assert second.global_step == 3 + (window.timed_steps() - 9) + 2  # no timed step inside the new warm-up


class SlowFetch(torch.utils.data.Dataset):
    """Each sample takes FETCH_S to load: the loader's share of the gap between steps."""

    FETCH_S = 0.004

    def __len__(self):
        return 400

    def __getitem__(self, index):

        time.sleep(self.FETCH_S)
        return torch.randn(1, 8, 8), index % 3


class SlowHook(L.Callback):
    """Host work between steps that is not the data: a callback taking HOOK_S after every batch."""

    HOOK_S = 0.02

    def on_train_batch_end(self, *args):

        time.sleep(self.HOOK_S)


def test_data_wait_is_the_loaders_fetch_and_other_host_time_is_its_own_column():
    window = speed.SpeedWindow(warmup=2, timed=20, profiled=0)
    trainer = quiet_trainer(max_steps=100, limit_val_batches=0, profiler=speed.FetchTimer(),
                            callbacks=[window, SlowHook()])
    trainer.fit(FakeNet(), torch.utils.data.DataLoader(SlowFetch(), batch_size=4))
    result, timed = window.result(), window.result().timed_steps
    seconds = sum(w[2] for w in window.windows)
    # lower bounds only (a sleep never takes less than asked): the fetch goes to data, the hook to host overhead
    assert window.fetches >= timed * 4 * SlowFetch.FETCH_S
    assert result.host_overhead_fraction * seconds >= (timed - 1) * SlowHook.HOOK_S
    assert result.data_wait_fraction + result.host_overhead_fraction <= 1
    assert window.fetches < window.waits  # the hook's time is not in the data wait


def test_without_a_fetch_timer_the_data_columns_stay_empty():
    window = speed.SpeedWindow(warmup=2, timed=20, profiled=0)
    trainer = quiet_trainer(max_steps=100, limit_val_batches=0, callbacks=[window])
    trainer.fit(FakeNet(), datamodules.get("synthetic")(batch_size=4, shape=(1, 8, 8), num_classes=3, num_samples=64))
    result = window.result()
    assert result.timed_steps >= 20 and result.data_wait_fraction is None and result.host_overhead_fraction is None


def test_divergence_is_read_at_window_ends_and_still_caught_within_one(monkeypatch):
    reads = []
    original = quality.QualityWatch.check_finite
    monkeypatch.setattr(quality.QualityWatch, "check_finite", lambda self: (reads.append(self.steps), original(self)))
    watch = quality.QualityWatch("acc", "max", None)
    with pytest.raises(quality.Diverged, match="within steps 1-10"):
        fit_fake([watch], max_steps=50, mode="nan")
    assert reads == [10]  # not once per step: the flag stays on the device until a window ends
    reads.clear()
    fit_fake([quality.QualityWatch("acc", "max", None)], max_steps=25)
    assert reads == [10, 16, 20, 25]  # every 10th step and each epoch's end (16 batches an epoch)


def test_inference_and_flops_run_on_the_training_device_after_lightnings_teardown(tmp_path, monkeypatch):
    seen = {}

    def spy(name, real):
        def wrapped(model, args, *rest, **kwargs):
            seen[name] = (next(model.parameters()).device, args[0].device)
            return real(model, args, *rest, **kwargs)
        return wrapped

    monkeypatch.setattr(inference, "inference_timing", spy("inference", inference.inference_timing))
    monkeypatch.setattr(cost, "inference_flops_per_sample", spy("flops", cost.inference_flops_per_sample))
    config = RunConfig(model="tests.fake_models:FakeNet", datamodule="synthetic", batch_size=16, profile="smoke",
                       data_args={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 64})
    row = measured_row(config, tmp_path)
    # training: the forward matmul and the weight gradient's (the input needs none); inference: the forward
    assert row["infer_samples_per_s"] > 0 and row["flops_per_sample"] == 2 * 2 * 64 * 3
    assert row["infer_flops_per_sample"] == 2 * 64 * 3
    training_device = torch.device("cpu")  # the smoke Trainer's root device here
    assert seen == {"inference": (training_device, training_device), "flops": (training_device, training_device)}


def test_cpu_runs_keep_the_plain_loader():
    dm = datamodules.get("mnist5k")(batch_size=64)
    dm.setup("fit")
    assert dm.resident_splits() is None
    assert isinstance(dm.train_dataloader(), torch.utils.data.DataLoader)


@pytest.mark.gpu
def test_gpu_data_lives_on_the_device_and_inference_runs_there(tmp_path):
    config = RunConfig(model="cnn", datamodule="mnist5k", device="cuda", profile="quick")
    built = session.build(config)
    trainer = session.make_trainer(config, built, [], None, tmp_path, max_steps=1)
    trainer.fit(built.model, built.datamodule)
    batches = built.datamodule.train_dataloader()
    assert isinstance(batches, DeviceBatches) and next(iter(batches))[0].is_cuda
    row = measured_row(config, tmp_path)  # timing bars are no test's: benchmarks/gpu_speed.py checks them
    assert row["mfu"] > 0 and row["peak_source"]
    assert row["timed_steps"] >= 100 and row["device_samples_per_s"] > 0


@pytest.mark.gpu
def test_gpu_synthetic_data_is_generated_on_the_device(tmp_path):
    config = RunConfig(model="resnet", datamodule="synthetic", device="cuda", profile="smoke", batch_size=8,
                       data_args={"shape": (3, 64, 64), "num_classes": 10, "num_samples": 64})
    built = session.build(config)
    trainer = session.make_trainer(config, built, [], None, tmp_path, max_steps=1)
    trainer.fit(built.model, built.datamodule)
    assert built.datamodule.train_set.tensors[0].is_cuda


def test_cpu_busy_share_is_taken_within_the_profiled_steps():
    window = speed.SpeedWindow(warmup=2, timed=20, profiled=5)
    fit_fake([window], max_steps=500, num_samples=400)
    result = window.result()
    # the profiler's op intervals lie inside the profiled steps' wall time: never more than all of it
    assert 0 < window.device_seconds <= window.profiled_seconds
    assert 0 < result.device_busy_fraction <= 1
    assert result.device_samples_per_s >= result.train_samples_per_s


def test_a_quick_run_with_two_batches_an_epoch_ends_with_a_full_window(tmp_path):
    config = RunConfig(model="tests.fake_models:FakeNet", datamodule="synthetic", batch_size=16, profile="quick",
                       data_args={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 32})
    row = measured_row(config, tmp_path)
    assert row["timed_steps"] >= 20 and row["train_samples_per_s"] > 0 and row["device_samples_per_s"] > 0
