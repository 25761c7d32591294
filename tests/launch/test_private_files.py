"""A sweep folder or cache another user can reach: refused, or nothing planted there is followed, blocks or runs."""

import os
import stat
import threading
from pathlib import Path

import pytest

from bench.cli import main
from bench.core.errors import SweepError
from bench.core.private_files import NotOwnFile, read_own_file
from bench.launch.child_process import run_child
from bench.launch.sweep import hold_sweep_folder, open_sweep_folder
from bench.results.io import flatten
from bench.run import child

RUN = ["run", "--models", "mlp", "--profile", "smoke", "--devices", "cpu", "--no-progress", "--wandb", "disabled"]


def tiny_config(**overrides):
    """A smoke config of the test suite's fake model on a little synthetic data (seconds)."""
    from bench.core.config import RunConfig

    fields = dict(model="tests.fake_models:FakeNet", datamodule="synthetic", batch_size=16, profile="smoke",
                  time_limit_s=120, model_args={"mode": "ok"},
                  data_args={"shape": (1, 8, 8), "num_classes": 3, "num_samples": 64})
    return RunConfig(**(fields | overrides))


@pytest.fixture
def own_caches(tmp_path, monkeypatch):
    """The caches under tmp_path, as a user with no compile caches set would have them."""
    monkeypatch.setenv("DNNBENCH_CACHE", str(tmp_path / "cache"))
    for variable in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path / "cache"


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777])
def test_an_out_folder_others_can_write_is_refused_in_one_line_with_exit_2(tmp_path, own_caches, capsys, mode):
    out = tmp_path / "shared"
    out.mkdir()
    out.chmod(mode)
    assert main(RUN + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "writable by other users" in err[0] and str(out) in err[0], err
    assert list(out.iterdir()) == []  # nothing created in it


def test_an_out_folder_or_a_cache_of_another_user_is_refused(tmp_path, own_caches, monkeypatch):
    open_sweep_folder(tmp_path / "mine")  # accepted as this user's
    other = os.getuid() + 1
    monkeypatch.setattr(os, "getuid", lambda: other)
    with pytest.raises(SweepError, match="belongs to another user"):
        open_sweep_folder(tmp_path / "mine")


@pytest.mark.parametrize("variable", ["DNNBENCH_CACHE", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"])
def test_a_cache_folder_others_can_write_is_refused(tmp_path, own_caches, monkeypatch, variable):
    shared = tmp_path / "shared-cache"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv(variable, str(shared))
    with pytest.raises(SweepError, match=f"{variable}.*writable by other users"):
        open_sweep_folder(tmp_path / "out")


def test_compile_caches_are_private_folders_under_the_dnnbench_cache(tmp_path, own_caches):
    open_sweep_folder(tmp_path / "out")
    for variable, name in (("TORCHINDUCTOR_CACHE_DIR", "torchinductor"), ("TRITON_CACHE_DIR", "triton")):
        folder = Path(os.environ[variable])
        assert folder == own_caches / name
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == os.getuid()
    assert stat.S_IMODE(own_caches.stat().st_mode) == 0o700


def test_torchs_shared_default_written_back_into_the_environment_is_replaced(tmp_path, own_caches, monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", os.path.abspath(default_cache_dir()))  # as torch leaves it
    open_sweep_folder(tmp_path / "out")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(own_caches / "torchinductor")


def test_a_link_planted_at_the_lock_is_refused_and_its_target_untouched(tmp_path, own_caches):
    target = tmp_path / "precious"
    target.write_text("keep me")
    out = open_sweep_folder(tmp_path / "out")
    (out / ".dnnbench.lock").symlink_to(target)
    with pytest.raises(SweepError, match="symbolic link"):
        with hold_sweep_folder(out):
            pass
    assert target.read_text() == "keep me"


@pytest.mark.integration
def test_links_planted_in_the_sweep_folder_change_no_file_and_the_row_names_the_private_cache(tmp_path,
                                                                                              own_caches):
    target = tmp_path / "precious"
    target.write_text("keep me")
    config = tiny_config()
    out = open_sweep_folder(tmp_path / "out")
    runs = out / "runs"
    names = [".write-test", f"{config.run_id}.log", f"{config.run_id}.config.json", f"{config.run_id}.json",
             f"{config.run_id}.json.tmp", f"{config.run_id}.progress", f"{config.run_id}.progress.tmp"]
    for name in names:
        (out / name if name.startswith(".") else runs / name).symlink_to(target)
    os.mkfifo(runs / "fifo.config.json")  # also a FIFO at a name: nothing opens it
    open_sweep_folder(out)
    with hold_sweep_folder(out):
        row = flatten(run_child(config, out))
    assert row["status"] == "ok", row["message"]
    assert target.read_text() == "keep me"
    assert str(own_caches / "torchinductor") in row["env_vars"]
    for name in (f"{config.run_id}.log", f"{config.run_id}.json", f"{config.run_id}.progress"):
        assert not (runs / name).is_symlink() and (runs / name).is_file()  # the link replaced by the run's own file


@pytest.mark.integration
def test_a_fifo_planted_at_the_old_job_path_neither_blocks_nor_runs(tmp_path, own_caches):
    config = tiny_config(seed=1)
    out = open_sweep_folder(tmp_path / "out")
    os.mkfifo(out / "runs" / f"{config.run_id}.config.json")
    rows = []
    runner = threading.Thread(target=lambda: rows.append(run_child(config, out)), daemon=True)
    runner.start()
    runner.join(timeout=300)
    assert rows and rows[0].status == "ok", rows
    assert stat.S_ISFIFO(os.lstat(out / "runs" / f"{config.run_id}.config.json").st_mode)  # never opened


@pytest.mark.parametrize("kind", ["fifo", "link", "another user's"])
def test_the_child_refuses_a_job_file_that_is_not_a_regular_file_of_the_users(tmp_path, monkeypatch, capfd, kind):
    monkeypatch.delenv("DNNBENCH_PARENT_PID", raising=False)  # started by hand: follows no parent
    job = tmp_path / "job.json"
    if kind == "fifo":
        os.mkfifo(job)
    elif kind == "link":
        real = tmp_path / "real.json"
        real.write_text("{}")
        job.symlink_to(real)
    else:
        job.write_text("{}")
        other = os.getuid() + 1
        monkeypatch.setattr(os, "getuid", lambda: other)
    assert child.main([str(job)]) == 2  # returns at once: a FIFO is not waited on
    assert "job file refused" in capfd.readouterr().err
    with pytest.raises(NotOwnFile):
        read_own_file(job)
