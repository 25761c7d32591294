"""The Ray executor on a local Ray instance started here: one row per config, a killed worker, resume."""

import pytest
import torch

from bench.cli import main
from bench.launch.sweep import run_sweep
from bench.results.io import read_rows
from tests.helpers import FAKE, fake_config

pytestmark = pytest.mark.integration

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_gives_one_row_per_config_survives_a_killed_worker_and_resumes(tmp_path, local_ray):
    ok = fake_config()
    killer = fake_config("kill_ray_worker", model="tests.crash_models:CrashNet")
    on_gpu = fake_config(device="cuda")  # asks Ray for the (fake) GPU
    rows = run_sweep([ok, killer, on_gpu], tmp_path, resume=False, progress=False, executor="ray")
    by_model = {(r["model"], r["device"]): r for r in rows}
    before = read_rows(tmp_path / "results.csv")
    assert len(rows) == 3 == len(before)
    assert by_model[(FAKE, "cpu")]["status"] == "ok", by_model[(FAKE, "cpu")]["message"]
    lost = by_model[(killer.model, "cpu")]
    assert lost["status"] == "error" and "Ray task failed" in lost["message"] and lost["reproduce"]
    gpu_row = by_model[(FAKE, "cuda")]
    assert gpu_row["devices_used"] == "cuda:0"  # Ray's CUDA_VISIBLE_DEVICES for the one fake GPU
    if not torch.cuda.is_available():
        assert gpu_row["status"] == "unavailable"

    again = fake_config(seed=1, repeat=1)
    resumed = run_sweep([ok, killer, on_gpu, again], tmp_path, resume=True, progress=False, executor="ray")
    written = read_rows(tmp_path / "results.csv")
    assert written[:3] == before and len(written) == 4 == len(resumed)  # only the new config ran
    assert written[3]["repeat"] == "1" and written[3]["status"] == "ok"


def test_an_unreachable_ray_address_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled", "--executor", "ray",
                 "--ray-address", "127.0.0.1:1", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "no Ray cluster at 127.0.0.1:1" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "results.csv").exists()


@pytest.fixture
def silent_listener():
    """Something that accepts TCP connections and never answers, as a wrong service on a Ray port would."""
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()


@pytest.mark.parametrize("address, fragment", [
    ("ray://127.0.0.1:1", "no Ray cluster at ray://127.0.0.1:1"),
    ("http://127.0.0.1:1", "--ray-address takes auto, local, HOST:PORT"),
    ("127.0.0.1:99999", "--ray-address takes"),
    ("listener", "does not answer as a Ray head"),
])
def test_a_ray_address_that_is_no_ray_head_is_one_line_and_exit_2(tmp_path, capsys, silent_listener, address,
                                                                   fragment):
    address = silent_listener if address == "listener" else address
    code = main(["run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled", "--executor", "ray",
                 "--ray-address", address, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and fragment in err, err
    assert "kept" not in err and not (tmp_path / "results.csv").exists()
