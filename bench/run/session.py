"""The training session (step: registry -> model + datamodule -> Lightning Trainer -> fit, test, measure -> row).

Runs inside the child process; knows models and data only through their registries.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch

import datamodules
import lightning_modules
from bench.core import progress
from bench.core.config import AUTO, SMOKE_LIMITS, TRAIN_TIME_SHARE, RunConfig
from bench.core.profiles import epoch_cap
from bench.core.row import Columns
from bench.run import inference_curve as infer_curve
from bench.run import wandb_run
from bench.run.measure import batch_size, best_effort, cost, energy, inference, memory, peaks, quality, speed
from bench.run.precision import PRECISIONS
from bench.run.progress import ProgressFile

OPTIMIZERS_ROOM = 4  # optimizer steps a batch the speed window's own fit leaves room for
FitModule = Any  # what the Trainer fits: the LightningModule, or torch.compile's wrapper of it (Lightning takes both)


@dataclass
class Built:
    """What the registries built for one config."""

    spec: lightning_modules.BenchSpec
    datamodule: L.LightningDataModule
    model: Any  # the registered LightningModule, with its own example_input / save_artifacts
    metric_target: float | None

    @property
    def scored(self) -> bool:
        """Whether the data has a meaningful quality (synthetic data has none: no metric, no target to stop at)."""
        return getattr(self.datamodule, "has_quality", True)


def build(config: RunConfig) -> Built:
    model_class = lightning_modules.get(config.model)
    spec = model_class.bench
    preset = spec.size(config.size)  # classic: the spec's defaults; the smoke profile shrinks either size
    L.seed_everything(config.seed, verbose=False)
    on_default_data = config.datamodule == preset.datamodule
    data_args = preset.data_kwargs(config.datamodule, config.profile) | config.data_args
    datamodule = datamodules.get(config.datamodule)(batch_size=config.batch_size, seed=config.seed, **data_args)
    model = lightning_modules.build_model(model_class, datamodule,
                                          **(preset.model_overrides(config.profile) | config.model_args))
    return Built(spec, datamodule, model, preset.metric_target if on_default_data else None)


def make_trainer(config: RunConfig, built: Built, callbacks: list, logger, sweep_dir: Path,
                 **overrides: Any) -> L.Trainer:
    """The Trainer of a quality run (epochs from the profile: a cap where the run stops at its target) or, with
    overrides, of the speed window's fit."""
    settings: dict[str, Any] = dict(max_epochs=epoch_cap(built.spec.epochs, config.profile, config.device),
                                    **(SMOKE_LIMITS if config.profile == "smoke" else {}))
    settings.update(overrides)
    return L.Trainer(
        accelerator="gpu" if config.device == "cuda" else "cpu", devices=config.num_devices,
        num_nodes=config.num_nodes, strategy=config.strategy, precision=config.precision,
        benchmark=config.cudnn_benchmark, enable_checkpointing=False, logger=logger or False,
        # A datamodule that shards its own batches across ranks says so; others get Lightning's sampler.
        use_distributed_sampler=not getattr(built.datamodule, "shards_itself", False),
        num_sanity_val_steps=0, enable_model_summary=False, enable_progress_bar=False,
        profiler=speed.FetchTimer(),  # the speed window's data wait: time inside the train loader's next()
        callbacks=callbacks, default_root_dir=str(sweep_dir), **settings,
    )


def speed_window_fit(config: RunConfig, built: Built, fit_model: FitModule, sweep_dir: Path,
                     window: speed.SpeedWindow | None = None,
                     flops: cost.TrainingFlops | None = None) -> speed.TrainThroughput:
    """The rest of the speed window in a short fit of its own, after the quality fit timed what it could: the same
    (trained, compiled) module and data, no logger, no validation. A few warm-up steps (one of them the step whose
    FLOPs are counted), the timed steps the quality fit was too short to give (all of them where it stopped before
    its warm-up; without `window`, a whole window of its own), then the profiled steps; the window ends the fit.
    A module that has not yet trained its WARMUP_STEPS in this process gets them all again."""
    window = window or speed.SpeedWindow(config.world_size)
    flops = flops or cost.TrainingFlops(step=2 if config.compile else 1)
    warm = window.steps >= speed.WARMUP_STEPS
    steps = window.carry_on(warmup=max(flops.step, 1) + (speed.REWARM_STEPS if warm else speed.WARMUP_STEPS))
    divergence = quality.QualityWatch(built.spec.metric, built.spec.metric_direction, None)
    # Lightning's max_steps counts optimizer steps, and a GAN steps two a batch: only a bound, the window stops the fit.
    trainer = make_trainer(config, built, [window, divergence, flops], None, sweep_dir, max_epochs=-1,
                           max_steps=OPTIMIZERS_ROOM * steps, limit_val_batches=0, limit_train_batches=1.0)
    trainer.fit(fit_model, built.datamodule)
    return window.result()  # a profile the fit cut short says so in window.profile_note


@dataclass(frozen=True)
class Quality(Columns):
    """The tested model's quality: its metric (empty on data without quality) and when it reached the target."""

    metric_name: str
    metric_direction: str
    metric_target: float | None
    time_to_target_s: float | None
    reached_target: str | None = None  # yes / no on validation; None without a target
    target_metric_value: float | None = None  # the validation value the target was judged on
    metric_value: float | None = None
    other_metrics: dict[str, Any] | None = None


@dataclass(frozen=True)
class Training(Columns):
    """What the quality run did: its size, length and compile time, and the batch it trained at."""

    params: int
    epochs: int
    steps: int
    compile_s: float | None
    batch_size: int
    epoch_cap: int | None  # the epochs it was allowed (profile and device class: bench/core/profiles.py)


@dataclass(frozen=True)
class Measured:
    """The session's share of the row: its pieces, in the order measured, and its notes (the row's message)."""

    pieces: list[Any]
    message: str
    curve: Any = None  # (progress) -> inference.csv rows (run/inference_curve.py run): the child runs it last


def quality_of(built: Built, results: Sequence[Mapping[str, Any]], watch: quality.QualityWatch) -> Quality:
    """The test metrics (of the model where the fit stopped: at its target, or at the cap) and the target's
    outcome on validation."""
    spec = built.spec
    reached = None if watch.target is None else "yes" if watch.reached else "no"  # the watch has a target if scored
    common = Quality(spec.metric, spec.metric_direction, built.metric_target, watch.time_to_target, reached,
                     watch.judged_value if watch.target is not None else None)
    metric = results[0].get(f"test/{spec.metric}") if results else None
    if built.scored and metric is not None:
        return replace(common, metric_value=float(metric),
                       other_metrics=other_metrics(results[0], built.model, spec.metric))
    return common


def other_metrics(test_results: Mapping[str, Any], model: L.LightningModule, main_metric: str) -> dict[str, Any]:
    """The test metrics besides the main one, each with the direction the model declares for it."""
    directions = getattr(model.bench, "other_metric_directions", {})
    return {key.removeprefix("test/"): {"value": float(value), "better": directions.get(key.removeprefix("test/"))}
            for key, value in sorted(test_results.items())
            if key.startswith("test/") and key != f"test/{main_metric}"}


def inference_args(config: RunConfig, built: Built, device: torch.device) -> tuple:
    precision = PRECISIONS[config.precision]
    args = precision.cast_inputs(inference.as_args(built.model.example_input(config.batch_size)))
    return tuple(a.to(device) if torch.is_tensor(a) else a for a in args)


def measure_trained(config: RunConfig, built: Built, fit_model: FitModule, device: torch.device,
                    train_samples_per_s: float | None, flops: cost.TrainingFlops,
                    meter: energy.RunEnergy | None = None) -> tuple[list[Columns], list[str]]:
    """Inference, FLOPs/MFU and GPU memory of the trained module, on the run's device and precision, and the notes
    of what failed or fell short; each best effort (a failure leaves its cells empty and a note)."""
    fit_model.to(device)  # Lightning's teardown moved the module to the CPU after fit/test
    precision, notes = PRECISIONS[config.precision], list[str]()
    args = best_effort(notes, "inference inputs", lambda: inference_args(config, built, device))
    budget_s = inference.BUDGETS_S.get(config.profile, inference.BUDGET_S)
    latency = args and best_effort(notes, "inference timing",
                                   lambda: inference.inference_timing(fit_model, args, device, precision, budget_s))
    if latency and latency.note(budget_s):
        notes.append(latency.note(budget_s))
    if args and meter is not None:
        meter.measure_inference(fit_model, args, device, precision)
    infer_flops = args and best_effort(notes, "inference FLOP count", lambda: cost.inference_flops_per_sample(
        built.model, args, precision.autocast(device.type)))
    if flops.note():
        notes.append(flops.note())  # type: ignore[arg-type]
    train = flops.per_sample
    peak = best_effort(notes, "peak FLOP/s", lambda: peaks.device_peak(
        device, precision.compute_dtype, config.world_size, config.peak_tflops,
        cudnn_share=train.cudnn_share if train else 0.0)) or peaks.Peak(None, "", "")
    infer_rate = latency.infer_samples_per_s if latency else None
    pieces: list[Columns] = [latency] if latency else []
    pieces.append(cost.cost(train, train_samples_per_s, infer_flops, infer_rate, peak))
    gpu_memory = best_effort(notes, "GPU memory reading", lambda: memory.gpu_peak(device))
    return pieces + ([gpu_memory] if gpu_memory else []), notes


def apply_settings(config: RunConfig, built: Built) -> tuple[FitModule, list[str]]:
    """The speed settings the row records (matmul precision, cuDNN TF32, memory format; cudnn benchmark goes to the
    Trainer); returns the module to fit, and a note where a setting has no effect."""
    notes = []
    torch.set_float32_matmul_precision(config.matmul_precision)
    torch.backends.cudnn.allow_tf32 = config.cudnn_tf32  # before any measurement (MFU reads it for the peak dtype)
    if config.memory_format == "channels_last":
        if len(getattr(built.model.hparams, "input_shape", ())) == 3 or built.spec.task == "generation":
            built.model.to(memory_format=torch.channels_last)
        else:
            notes.append("channels_last has no effect: the model's inputs are not images")
    return torch.compile(built.model, mode=config.compile_mode) if config.compile else built.model, notes


class NotRun(Exception):
    """The run could not use a setting of its config (the row would claim one it did not run): `unsupported`."""


def batch_ran(config: RunConfig, window: speed.SpeedWindow) -> None:
    """NotRun when no training step got the config's batch (the training data is smaller): the row must not claim it."""
    if 1 < window.largest_batch < config.batch_size:
        raise NotRun(f"batch size {config.batch_size:,} is more than the {window.largest_batch:,} samples a training "
                     f"step got (all the training data there is): give --batch-sizes {window.largest_batch} or less")


def train_and_measure(config: RunConfig, sweep_dir: Path) -> Measured | None:
    """Train and test one config, then time its speed window and inference; the row's measured pieces (None on
    ranks other than 0)."""
    started, built = time.monotonic(), build(config)
    fit_model, notes = apply_settings(config, built)  # the run's notes (its message), each from the step making it
    notes[:0] = [] if built.scored else [f"{config.datamodule} data has no meaningful quality; metric left empty"]
    if config.batch_size_mode == AUTO:  # searched before the measured fit, on a trainer of its own
        found = batch_size.largest_fitting(make_trainer(config, built, [], None, sweep_dir, max_epochs=-1),
                                           fit_model, built.datamodule, config.batch_size)
        config = config.but(batch_size=found.batch_size)
        notes.append(found.note)
    watch = quality.QualityWatch(built.spec.metric, built.spec.metric_direction,
                                 built.metric_target if built.scored else None, stop=config.stops_at_target)
    flops = cost.TrainingFlops(step=2 if config.compile else 1)  # the first step compiles
    smoke = config.profile == "smoke"
    # The quality fit's own steps are the speed window (after its warm-up; smoke: after the counted step, the few
    # there are). Elsewhere the FLOPs are counted, and the profiled steps run, in a short fit afterwards: neither
    # belongs in the time to target.
    window = speed.SpeedWindow(config.world_size, warmup=flops.step if smoke else speed.WARMUP_STEPS, profiled=0,
                               stop=False)
    logger = wandb_run.start(config, sweep_dir)
    shown = ProgressFile(progress.path_for(sweep_dir, config.run_id))  # the sweep's console line
    meter = energy.RunEnergy(config.device, config.num_devices, config.num_nodes)
    meter.over_window(window)
    # The counter before the window: its tally, at the counted step's end, falls before the window's clock starts.
    callbacks = [watch] + ([flops] if smoke else []) + [window, shown, meter.to_target(watch)]
    if logger is not None:
        callbacks.append(wandb_run.history(window, watch))  # per-step curves, logged at the window's ends
    cap_s = config.train_time_cap_s  # a stop-at-target run's seconds cap, beside its epochs
    trainer = make_trainer(config, built, callbacks, logger, sweep_dir,
                           max_time=timedelta(seconds=cap_s) if cap_s else None)
    device = trainer.strategy.root_device
    best_effort(notes, "GPU memory reset", lambda: memory.reset_gpu_peak(device))
    trainer.fit(fit_model, built.datamodule)
    batch_ran(config, window)
    if cap_s and not watch.reached and watch.train_seconds is not None and watch.train_seconds >= cap_s:
        notes.append(f"training stopped at its time cap ({cap_s:g} s: {TRAIN_TIME_SHARE:g} of the time "
                     f"limit) after {trainer.current_epoch} epoch(s), before the target")
    # The model as the fit left it: at the validation that reached the target when the run stops there.
    results = trainer.test(fit_model, built.datamodule, verbose=False)
    pieces: list[Columns] = [
        Training(sum(p.numel() for p in built.model.parameters()), trainer.current_epoch, trainer.global_step,
                 watch.compile_seconds() if config.compile else None, config.batch_size, trainer.max_epochs),
        quality_of(built, results, watch)]
    if trainer.global_rank == 0:  # pictures of the model that was tested, before the speed window trains on
        notes += save_artifacts(built.model, sweep_dir / "artifacts" / config.run_id)
    tested, curve_note = infer_curve.tested_weights(config, built.model)  # the speed window trains on
    throughput = window.result() if smoke else speed_window_fit(config, built, fit_model, sweep_dir, window, flops)
    if trainer.global_rank != 0:
        return None  # every rank trains; rank 0 measures inference and writes the row
    trained, trained_notes = measure_trained(config, built, fit_model, device, throughput.train_samples_per_s, flops,
                                             meter)
    pieces += [throughput, *trained, meter.result()]
    notes += [curve_note, (window.profile_note or "") if not smoke else "", *trained_notes]
    curve = None if tested is None else lambda progress=None: infer_curve.run(
        curve_of(config, built, device, sweep_dir, started + infer_curve.CURVE_SHARE * config.time_limit_s), tested,
        progress)
    return Measured(pieces, "; ".join(note for note in notes if note), curve)  # W&B's summary: bench/run/child.py


def curve_of(config: RunConfig, built: Built, device: torch.device, sweep_dir: Path,
             deadline: float) -> infer_curve.Curve:
    """The run's inference curve: the model's inputs at any batch; its own test pass on a fresh one-device Trainer."""
    one_device = config.but(num_devices=1, num_nodes=1)
    tester = infer_curve.tester(lambda: make_trainer(one_device, built, [], None, sweep_dir), built.datamodule,
                                built.spec.metric) if built.scored else None
    return infer_curve.Curve(config, built.model, device, PRECISIONS[config.precision],
                             lambda batch: inference_args(config.but(batch_size=batch), built, device), tester,
                             (built.spec.metric, built.spec.metric_direction), deadline)


def save_artifacts(model: Any, out_dir: Path) -> list[str]:
    """Sample grids / attention maps; a picture must never cost the row, so a failure becomes a note."""
    if not hasattr(model, "save_artifacts"):
        return []
    try:
        model.save_artifacts(out_dir)
    except Exception as exc:
        return [f"artifacts failed: {exc}".splitlines()[0]]
    return []
