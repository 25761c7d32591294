"""bench/launch/table.py: the sweep's table at the end of `dnnbench run` shows what varies and the headline numbers,
with human headers, within 120 columns."""

from bench.launch.table import sweep_table, table_columns


def test_the_sweep_table_shows_what_varies_and_the_headline_numbers_with_human_headers_within_120_columns():
    base = {"model": "mlp", "datamodule": "mnist5k", "device": "cpu", "num_devices": 1, "precision": "32-true",
            "compile": "off", "batch_size": 128, "size": "classic", "profile": "quick", "status": "ok",
            "metric_name": "acc", "metric_value": 0.92213, "metric_target": 0.93, "metric_direction": "max",
            "reached_target": "yes", "target_metric_value": 0.9312, "time_to_target_s": 1.2481,
            "train_samples_per_s": 45706.2, "infer_samples_per_s": 2117000.0, "latency_p50_ms": 35.98,
            "peak_rss_mb": 812.4, "wall_s": 6.1, "data_wait_fraction": 0.033}
    rows = [base, base | {"precision": "bf16-mixed", "train_samples_per_s": 30100.0}]
    lines = sweep_table(rows).splitlines()
    assert all(len(line) <= 120 for line in lines)
    headers = [" ".join(header).strip() for _, header, _ in table_columns(rows)]
    assert headers == ["model", "precision", "test quality", "val vs target", "to target s", "train samples/s",
                       "infer samples/s", "p50 ms @ bs128", "peak mem MiB"]  # no column the same in all
    assert "45,700" in lines[2] and "2.12 M" in lines[2] and "acc 0.922" in lines[2] and "✓ 0.931 ≥ 0.93" in lines[2]
    wide = [row | {"model": "a_rather_long_model_name", "device": "cuda" if i else "cpu",
                   "compile": "on" if i else "off", "status": "ok" if i else "oom",
                   "size": "large" if i else "classic", "batch_size": 64 + i}
            for i, row in enumerate(rows * 3)]
    lines = sweep_table(wide).splitlines()
    assert all(len(line) <= 120 for line in lines) and lines[-1].startswith("(left out to fit 120 columns: ")


def test_the_sweep_table_of_make_bench_leaves_each_model_s_own_data_to_the_run_lines():
    rows = [{"model": m, "datamodule": d, "precision": p, "batch_size": b, "status": "ok", "metric_name": "acc",
             "metric_value": 0.9, "train_samples_per_s": 1000.0} for m, d, b in (("mlp", "mnist5k", 128),
                                                                               ("lstm", "seq_mnist5k", 64))
            for p in ("32-true", "bf16-mixed")]
    assert [key for key, _, _ in table_columns(rows)][:3] == ["model", "precision", "batch_size"]
    rows.append(dict(rows[0], datamodule="fashion_mnist"))  # a model on two datamodules: compared along it
    assert [key for key, _, _ in table_columns(rows)][:3] == ["model", "datamodule", "precision"]
