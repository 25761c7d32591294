"""The results CSV columns: part of the interface, documented in results/README.md."""

SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)  # 2 added other_metrics; a version-1 file reads the same without it

CONFIG_COLUMNS = [
    "model", "datamodule", "device", "num_devices", "num_nodes", "strategy", "precision", "compile",
    "batch_size", "profile", "seed", "repeat",
]
RESULT_COLUMNS = [
    "status", "message",
    "metric_name", "metric_value", "metric_direction", "metric_target", "other_metrics", "quality_drift",
    "time_to_target_s",
    "train_samples_per_s", "infer_samples_per_s", "data_wait_fraction", "latency_p50_ms", "latency_p95_ms",
    "peak_gpu_mem_allocated_mb", "peak_gpu_mem_reserved_mb", "peak_rss_mb",
    "params", "flops_per_sample", "achieved_tflops", "peak_tflops", "mfu",
    "epochs", "steps", "wall_s",
]
ENVIRONMENT_COLUMNS = [
    "device_name", "torch_version", "lightning_version", "cuda_version", "git_commit", "hostname",
    "started_at", "schema_version", "reproduce",
]
COLUMNS = CONFIG_COLUMNS + RESULT_COLUMNS + ENVIRONMENT_COLUMNS

STATUSES = ("ok", "oom", "unsupported", "unavailable", "diverged", "timeout", "error")
