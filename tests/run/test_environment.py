"""bench/run/environment.py: what a row says about its machine and software."""

import json
import os

from bench.run.environment import environment


def test_environment_names_the_cpu_its_threads_and_the_software():
    env = environment("cpu")
    assert env["cpu_model"] and env["cpu_model"] != "x86_64" and env["device_name"] == env["cpu_model"]
    assert env["cpu_threads"] == os.cpu_count() and env["torch_threads"] >= 1
    assert env["torch_version"] and env["lightning_version"] and env["hostname"]
    assert isinstance(json.loads(env["env_vars"]), dict)


def test_speed_env_vars_are_recorded_when_set(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("NCCL_DEBUG", "INFO")
    monkeypatch.setenv("UNRELATED_VARIABLE", "x")
    recorded = json.loads(environment("cpu")["env_vars"])
    assert recorded["OMP_NUM_THREADS"] == "3" and recorded["NCCL_DEBUG"] == "INFO"
    assert "UNRELATED_VARIABLE" not in recorded


def test_a_row_carries_its_environment_noise_check_and_memory_baseline(tmp_path):
    from bench.core.config import RunConfig
    from bench.results.io import flatten
    from bench.run.child import run

    config = RunConfig(model="tests.fake_models:FakeNet", datamodule="synthetic", profile="smoke", batch_size=16)
    row = flatten(run(config, tmp_path))
    assert row["status"] == "ok", row["message"]
    assert row["cpu_model"] and row["cpu_threads"] >= 1 and row["torch_threads"] >= 1
    assert 0 < row["rss_after_import_mb"] <= row["peak_rss_mb"]
    assert row["load_avg_start"] >= 0 and row["other_cpu_cores"] >= 0 and isinstance(row["noise_warning"], str)


def test_the_cpu_name_cache_lives_in_dnnbench_cache(tmp_path, monkeypatch):
    import platform

    import psutil

    from bench.run.environment import cpu_model

    monkeypatch.setenv("DNNBENCH_CACHE", str(tmp_path))
    (tmp_path / f"cpu-{platform.node()}-{int(psutil.boot_time())}.json").write_text('{"brand_raw": "Cached CPU"}')
    assert cpu_model() == "Cached CPU"
