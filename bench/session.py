"""The training session (step: registry -> model + datamodule -> Lightning Trainer -> fit, test, measure -> row).

Runs inside the child process; knows models and data only through their registries.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

import datamodules
import lightning_modules
from bench.config import SMOKE_LIMITS, RunConfig
from bench.measure import cost, inference, memory, speed
from bench.precision import PRECISIONS


@dataclass
class Built:
    """What the registries built for one config."""

    spec: lightning_modules.BenchSpec
    datamodule: L.LightningDataModule
    model: L.LightningModule
    metric_target: float | None
    notes: list[str] = field(default_factory=list)  # become the row's message


def build(config: RunConfig) -> Built:
    model_class = lightning_modules.get(config.model)
    spec = model_class.bench
    L.seed_everything(config.seed, verbose=False)
    on_default_data = config.datamodule == spec.default_datamodule
    data_args = (dict(spec.datamodule_kwargs) if on_default_data else {}) | config.data_args
    datamodule = datamodules.get(config.datamodule)(batch_size=config.batch_size, seed=config.seed, **data_args)
    model = lightning_modules.build_model(model_class, datamodule, tiny=config.profile == "smoke",
                                          **config.model_args)
    built = Built(spec, datamodule, model, spec.metric_target if on_default_data else None)
    if not getattr(datamodule, "has_quality", True):
        built.notes.append(f"{config.datamodule} data has no meaningful quality; metric left empty")
    return built


def make_trainer(config: RunConfig, built: Built, callbacks: list, logger, sweep_dir: Path) -> L.Trainer:
    return L.Trainer(
        accelerator="gpu" if config.device == "cuda" else "cpu", devices=config.num_devices,
        num_nodes=config.num_nodes, strategy=config.strategy, precision=config.precision,
        max_epochs=built.spec.epochs[config.profile], enable_checkpointing=False, logger=logger or False,
        # A datamodule that shards its own batches across ranks says so; others get Lightning's sampler.
        use_distributed_sampler=not getattr(built.datamodule, "shards_itself", False),
        num_sanity_val_steps=0, enable_model_summary=False, enable_progress_bar=False,
        callbacks=callbacks, default_root_dir=str(sweep_dir),
        **(SMOKE_LIMITS if config.profile == "smoke" else {}),
    )


def quality_columns(built: Built, results: list[dict], watch: speed.QualityWatch) -> dict[str, Any]:
    spec = built.spec
    columns: dict[str, Any] = {"metric_name": spec.metric, "metric_direction": spec.metric_direction,
                               "metric_target": built.metric_target, "time_to_target_s": watch.time_to_target}
    metric = results[0].get(f"test/{spec.metric}") if results else None
    if getattr(built.datamodule, "has_quality", True) and metric is not None:
        columns["metric_value"] = float(metric)
        columns["other_metrics"] = other_metrics(results[0], built.model, spec.metric)
    return columns


def other_metrics(test_results: dict[str, Any], model: L.LightningModule, main_metric: str) -> dict[str, Any]:
    """The test metrics besides the main one, each with the direction the model declares for it."""
    directions = getattr(model.bench, "other_metric_directions", {})
    return {key.removeprefix("test/"): {"value": float(value), "better": directions.get(key.removeprefix("test/"))}
            for key, value in sorted(test_results.items())
            if key.startswith("test/") and key != f"test/{main_metric}"}


def measure_trained(config: RunConfig, built: Built, fit_model: torch.nn.Module, device: torch.device,
                    train_samples_per_s: float | None) -> dict[str, Any]:
    """Inference, FLOPs/MFU and GPU memory of the trained module."""
    precision = PRECISIONS[config.precision]
    args = precision.cast_inputs(inference.as_args(built.model.example_input(config.batch_size)))
    latency = inference.inference_timing(fit_model, args, device, precision)
    try:
        forward = cost.forward_flops_per_sample(built.model, args)
    except Exception as exc:  # FLOP counting is best effort (e.g. ops the counter does not know)
        forward = None
        built.notes.append(f"flop count failed: {exc}".splitlines()[0])
    world_size = config.num_devices * config.num_nodes
    peak = cost.peak_tflops(device, precision, world_size, config.peak_tflops)
    return (latency.columns() | cost.cost(forward, train_samples_per_s, peak).columns()
            | memory.gpu_peak(device).columns())


def train_and_measure(config: RunConfig, sweep_dir: Path) -> dict[str, Any] | None:
    """Train and test one config and measure it; the row's result columns (None on ranks other than 0)."""
    built = build(config)
    train_speed = speed.TrainSpeed(config.num_devices * config.num_nodes)
    watch = speed.QualityWatch(built.spec.metric, built.spec.metric_direction, built.metric_target)
    logger = wandb_logger(config, sweep_dir)
    history = [wandb_history()] if logger is not None else []  # per-step curves, logged after fit
    trainer = make_trainer(config, built, [train_speed, watch, *history], logger, sweep_dir)
    device = trainer.strategy.root_device
    memory.reset_gpu_peak(device)
    fit_model = torch.compile(built.model) if config.compile else built.model
    trainer.fit(fit_model, built.datamodule)
    results = trainer.test(fit_model, built.datamodule, verbose=False)
    if trainer.global_rank != 0:
        return None  # every rank trains; rank 0 measures inference and writes the row
    throughput = train_speed.result()
    row = {"params": sum(p.numel() for p in built.model.parameters()), "epochs": trainer.current_epoch,
           "steps": trainer.global_step}
    row |= quality_columns(built, results, watch) | throughput.columns()
    row |= measure_trained(config, built, fit_model, device, throughput.train_samples_per_s)
    built.notes += save_artifacts(built.model, sweep_dir / "artifacts" / config.run_id)
    row["message"] = "; ".join(built.notes)
    finish_wandb(logger, config.columns() | row, sweep_dir / "artifacts" / config.run_id)
    return row


def save_artifacts(model: L.LightningModule, out_dir: Path) -> list[str]:
    """Sample grids / attention maps; a picture must never cost the row, so a failure becomes a note."""
    if not hasattr(model, "save_artifacts"):
        return []
    try:
        model.save_artifacts(out_dir)
    except Exception as exc:
        return [f"artifacts failed: {exc}".splitlines()[0]]
    return []


def wandb_logger(config: RunConfig, sweep_dir: Path):
    if config.wandb == "disabled":
        return None
    try:
        from bench import wandb_log

        return wandb_log.run_logger(config, sweep_dir)
    except Exception as exc:
        print(f"dnnbench: W&B logging off for this run ({exc})", file=sys.stderr)
        return None


def wandb_history() -> L.Callback:
    from bench import wandb_log

    return wandb_log.StepHistory()


def finish_wandb(logger, row: dict[str, Any], artifact_dir: Path) -> None:
    if logger is None:
        return
    try:
        from bench import wandb_log

        wandb_log.finish_run(logger, row, artifact_dir)
    except Exception as exc:
        print(f"dnnbench: W&B summary not written ({exc})", file=sys.stderr)
