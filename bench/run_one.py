"""One isolated run: `python -m bench.run_one CONFIG.json RESULT.json` trains, measures and writes one row.

The sweep starts this in a child process with a time limit; whatever happens here, a row with a status comes out.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.config import SMOKE_LIMITS, RunConfig
from bench.schema import SCHEMA_VERSION

AUTOCAST_DTYPES = {"16-mixed": "float16", "bf16-mixed": "bfloat16"}


CODE_PATHS = ["bench", "lightning_modules", "datamodules", "pyproject.toml", "constraints.txt"]


def git_commit() -> str:
    """HEAD's short hash, with `-dirty` when the code (not results) differs from it: the row's code is not HEAD's."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
                                 cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{commit}-dirty" if commit and changed else commit


def environment(config: RunConfig) -> dict[str, Any]:
    import lightning
    import torch

    device_name = platform.processor() or platform.machine()
    if config.device == "cuda" and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(0)
    return {"device_name": device_name, "torch_version": torch.__version__,
            "lightning_version": lightning.__version__, "cuda_version": torch.version.cuda or "",
            "git_commit": git_commit(), "hostname": platform.node(), "schema_version": SCHEMA_VERSION,
            "reproduce": config.reproduce()}


def other_metrics(test_results: dict[str, Any], main_metric: str) -> str:
    """The test metrics besides the main one, as `name=value` pairs (IS next to FID, PSNR/SSIM next to MSE)."""
    pairs = [f"{key.removeprefix('test/')}={float(value):.4g}" for key, value in sorted(test_results.items())
             if key.startswith("test/") and key != f"test/{main_metric}"]
    return " ".join(pairs)


def failure_status(exc: BaseException) -> str:
    import torch

    from bench.measure import Diverged

    if isinstance(exc, Diverged):
        return "diverged"
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return "oom"
    return "error"


def unsupported_reason(config: RunConfig) -> str | None:
    """Why this device cannot run this precision / compile, checked before any work."""
    import torch

    if config.device == "cuda":
        if not torch.cuda.is_available():
            return None  # handled as 'unavailable'
        if config.precision.startswith("bf16") and not torch.cuda.is_bf16_supported():
            return f"{torch.cuda.get_device_name(0)} does not support bfloat16"
    if config.device == "cpu" and config.precision == "16-mixed":
        # Lightning would silently run bf16-mixed instead: a row labelled 16-mixed would be a lie.
        return "16-mixed is not supported on CPU (Lightning substitutes bf16-mixed); use bf16-mixed"
    return None


def train_and_measure(config: RunConfig, out_dir: Path, row: dict[str, Any]) -> None:
    import lightning as L
    import torch

    import datamodules
    import lightning_modules
    from bench import measure

    model_class = lightning_modules.get(config.model)
    spec = model_class.bench
    L.seed_everything(config.seed, verbose=False)
    data_args = dict(spec.datamodule_kwargs) if config.datamodule == spec.default_datamodule else {}
    data_args.update(config.data_args)
    datamodule = datamodules.get(config.datamodule)(batch_size=config.batch_size, seed=config.seed, **data_args)
    model = lightning_modules.build_model(model_class, datamodule, tiny=config.profile == "smoke",
                                          **config.model_args)
    has_quality = getattr(datamodule, "has_quality", True)
    row.update(metric_name=spec.metric, metric_direction=spec.metric_direction,
               metric_target=spec.metric_target if config.datamodule == spec.default_datamodule else None,
               params=sum(p.numel() for p in model.parameters()))

    world_size = config.num_devices * config.num_nodes
    speed = measure.TrainSpeed(world_size)
    quality = measure.QualityWatch(spec.metric, spec.metric_direction, row["metric_target"])
    logger = wandb_logger(config, out_dir)
    trainer = L.Trainer(
        accelerator="gpu" if config.device == "cuda" else "cpu", devices=config.num_devices,
        num_nodes=config.num_nodes, strategy=config.strategy, precision=config.precision,
        max_epochs=spec.epochs[config.profile], enable_checkpointing=False, logger=logger or False,
        use_distributed_sampler=False,  # datamodules shard their own pre-collated batches (datamodules/base.py)
        num_sanity_val_steps=0, enable_model_summary=False, enable_progress_bar=False,
        callbacks=[speed, quality], default_root_dir=str(out_dir),
        **(SMOKE_LIMITS if config.profile == "smoke" else {}),
    )
    device = trainer.strategy.root_device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    fit_model = torch.compile(model) if config.compile else model
    trainer.fit(fit_model, datamodule)
    results = trainer.test(fit_model, datamodule, verbose=False)
    if trainer.global_rank != 0:
        return  # every rank trains; rank 0 measures inference and writes the row
    metric = results[0].get(f"test/{spec.metric}") if results else None
    if has_quality and metric is not None:
        row["metric_value"] = float(metric)
        row["other_metrics"] = other_metrics(results[0], spec.metric)
    elif not has_quality:
        row["message"] = f"{config.datamodule} data has no meaningful quality; metric left empty"
    row.update(time_to_target_s=quality.time_to_target, train_samples_per_s=speed.samples_per_s(),
               data_wait_fraction=speed.data_wait_fraction(), epochs=trainer.current_epoch,
               steps=trainer.global_step)

    example = model.example_input(config.batch_size)
    precision_dtype = {"bf16-true": torch.bfloat16, "64-true": torch.float64}.get(config.precision)
    if precision_dtype is not None:  # true-precision runs keep the weights in that dtype
        example = tuple(x.to(precision_dtype) if x.is_floating_point() else x for x in measure.as_args(example))
    autocast = AUTOCAST_DTYPES.get(config.precision)
    row.update(measure.inference_timing(fit_model, example, device, getattr(torch, autocast) if autocast else None))
    try:
        forward = measure.forward_flops_per_sample(model, example)
    except Exception as exc:  # FLOP counting is best effort (e.g. ops the counter does not know)
        forward, row["message"] = None, f"flop count failed: {exc}".splitlines()[0]
    if forward:
        row["flops_per_sample"] = 3 * forward  # training: forward + backward (about twice the forward)
        if row["train_samples_per_s"]:
            row["achieved_tflops"] = row["flops_per_sample"] * row["train_samples_per_s"] / 1e12
    peak = config.peak_tflops
    if peak is None:
        from lightning.fabric.utilities.throughput import get_available_flops

        dtype = {"32-true": torch.float32, "64-true": torch.float64}.get(config.precision, torch.bfloat16)
        if config.precision == "16-mixed":
            dtype = torch.float16
        available = get_available_flops(device, dtype)
        peak = available * world_size / 1e12 if available else None
    row["peak_tflops"] = peak
    if peak and row.get("achieved_tflops"):
        row["mfu"] = row["achieved_tflops"] / peak
    if device.type == "cuda":
        row["peak_gpu_mem_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        row["peak_gpu_mem_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20
    save_artifacts(model, out_dir / "artifacts" / config.run_id, row)
    finish_wandb(logger, row)


def save_artifacts(model, out_dir: Path, row: dict[str, Any]) -> None:
    if not hasattr(model, "save_artifacts"):
        return
    try:
        model.save_artifacts(out_dir)
    except Exception as exc:  # a picture must never cost the row
        row["message"] = (row.get("message") or "") + f" artifacts failed: {exc}".splitlines()[0]


def wandb_logger(config: RunConfig, out_dir: Path):
    if config.wandb == "disabled":
        return None
    try:
        from bench import wandb_log

        return wandb_log.run_logger(config.to_dict() | config.columns(), config.sweep_name, config.wandb, out_dir)
    except Exception as exc:
        print(f"dnnbench: W&B logging off for this run ({exc})", file=sys.stderr)
        return None


def finish_wandb(logger, row: dict[str, Any]) -> None:
    if logger is None:
        return
    try:
        from bench import wandb_log

        wandb_log.finish_run(logger, row)
    except Exception as exc:
        print(f"dnnbench: W&B summary not written ({exc})", file=sys.stderr)


def run(config: RunConfig, out_dir: Path) -> dict[str, Any]:
    """Execute one config in this process and return its row (status set whatever happens)."""
    started = time.perf_counter()
    row: dict[str, Any] = config.columns() | {"status": "ok", "message": "",
                                               "started_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    try:
        row.update(environment(config))
        import torch

        if config.device == "cuda" and not torch.cuda.is_available():
            row.update(status="unavailable", message="no CUDA device on this machine")
        elif config.device == "cuda" and torch.cuda.device_count() < config.num_devices:
            row.update(status="unavailable",
                       message=f"{config.num_devices} GPUs asked, {torch.cuda.device_count()} present")
        elif (reason := unsupported_reason(config)) is not None:
            row.update(status="unsupported", message=reason)
        else:
            train_and_measure(config, out_dir, row)
    except BaseException as exc:  # noqa: BLE001 - one row whatever happens
        if isinstance(exc, KeyboardInterrupt):
            raise
        last_line = (traceback.format_exception_only(type(exc), exc)[-1]).strip()
        row.update(status=failure_status(exc), message=last_line[:500])
        traceback.print_exc()
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    row["peak_rss_mb"] = max(usage, children) / 1024  # ru_maxrss is in KiB on Linux
    row["wall_s"] = time.perf_counter() - started
    return row


def main(argv: list[str] | None = None) -> int:
    config_path, result_path = (argv or sys.argv[1:])[:2]
    config = RunConfig(**json.loads(Path(config_path).read_text()))
    out_dir = Path(result_path).parent.parent  # results go to <sweep>/runs/<id>.json
    row = run(config, out_dir)
    if int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0:
        tmp = Path(f"{result_path}.tmp")
        tmp.write_text(json.dumps(row, default=str))
        tmp.replace(result_path)  # atomic: the sweep never reads half a row
    return 0


if __name__ == "__main__":
    sys.exit(main())
