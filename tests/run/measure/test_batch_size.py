"""bench/run/measure/batch_size.py: `--batch-sizes auto` searches powers of two up to a named limit."""

from bench.core import config as cfg
from bench.core.config import RunConfig
from bench.results.io import flatten
from bench.run.child import run
from bench.run.measure import batch_size
from tests.helpers import FAKE


def fake_auto(**model_args) -> RunConfig:
    return RunConfig(model=FAKE, datamodule="synthetic", batch_size=16, batch_size_mode="auto", profile="smoke",
                     model_args=model_args, data_args={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 1024})


def test_auto_batch_size_searches_powers_of_two_and_records_the_batch_it_found(tmp_path):
    row = flatten(run(fake_auto(), tmp_path))
    assert row["status"] == "ok", row["message"]
    # No out-of-memory error on a CPU: the search runs to its CPU cap.
    assert row["batch_size"] == 16 * 2**batch_size.CPU_DOUBLINGS and row["batch_size_mode"] == "auto"
    assert "found by --batch-sizes auto" in row["message"]
    assert "--batch-sizes auto" in row["reproduce"]
    assert cfg.identity(row) == cfg.identity(fake_auto().columns())  # whichever batch it found: one config
    assert "bs=auto" in cfg.label(row)
    assert not list(tmp_path.glob(".scale_batch_size_*.ckpt"))  # the finder's checkpoint is cleaned up


def test_auto_batch_size_keeps_the_last_batch_before_an_out_of_memory_error(tmp_path):
    row = flatten(run(fake_auto(oom_above=40), tmp_path))  # 16 and 32 fit, 64 runs out of memory
    assert row["status"] == "ok", row["message"]  # the measured fit itself ran at the batch found
    assert row["batch_size"] == 32


def test_an_out_of_memory_error_at_a_fixed_batch_stays_an_oom_row(tmp_path):
    config = fake_auto(oom_above=40).but(batch_size=64, batch_size_mode="fixed")
    row = flatten(run(config, tmp_path))
    assert row["status"] == "oom" and row["batch_size"] == 64 and row["batch_size_mode"] == "fixed"


def test_the_auto_search_names_the_limit_that_stopped_it():
    assert batch_size.doublings_allowed(16, on_gpu=True) == (8, "the search stops at 256x the default")
    doublings, limit = batch_size.doublings_allowed(256, on_gpu=True)  # 256 x 32 = 8192: Lightning's own cap
    assert doublings == 5 and "8192" in limit
    assert batch_size.doublings_allowed(64, on_gpu=False)[0] == batch_size.CPU_DOUBLINGS
    assert batch_size.cap_at_split(128, 64, samples=100) == 64  # a batch larger than the data: the largest below
    assert batch_size.cap_at_split(64, 64, samples=100) == 64 and batch_size.cap_at_split(256, 64, None) == 256


def test_auto_batch_size_is_capped_at_the_training_split(tmp_path):
    config = fake_auto()
    config = config.but(data_args={**config.data_args, "num_samples": 40})  # 16 and 32 fit, 64 would be all of it
    row = flatten(run(config, tmp_path))
    assert row["status"] == "ok", row["message"]
    assert row["batch_size"] == 32 and "stopped by the training split's 40 samples" in row["message"]
