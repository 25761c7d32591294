"""bench/run/measure/memory.py: the child keeps freed host memory (glibc's thresholds) unless the user chose."""

import json


def test_a_run_keeps_freed_host_memory_and_says_so_unless_the_user_chose(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from bench.core.config import RunConfig
    from bench.results.io import flatten
    from bench.run.child import run
    from bench.run.measure import memory

    calls = []
    libc = SimpleNamespace(mallopt=lambda *args: calls.append(args))
    monkeypatch.setattr(memory, "ctypes", SimpleNamespace(CDLL=lambda name: libc))
    monkeypatch.setattr(memory.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1048576")  # the user's own choice stays
    config = RunConfig(model="tests.fake_models:FakeNet", datamodule="synthetic", profile="smoke", batch_size=16)
    row = flatten(run(config, tmp_path))
    assert row["status"] == "ok", row["message"]
    assert sorted(calls) == [(-3, 32 << 20), (-1, 1048576)]
    recorded = json.loads(row["env_vars"])
    assert recorded["MALLOC_MMAP_THRESHOLD_"] == str(32 << 20) and recorded["MALLOC_TRIM_THRESHOLD_"] == "1048576"
