"""Energy and machine-state columns: NVML's cumulative counter, throttle reasons, a GPU without a counter (all with a
fake NVML), RAPL's package counters with wrap-around (a fake sysfs tree), and the callbacks over a real fit."""

from __future__ import annotations

import sys
import time
import types

import lightning as L
import pytest
import torch

from bench.core.columns import BY_NAME, GATED, of_group
from bench.run.measure import energy_counters
from bench.run.measure.energy import Energy, RunEnergy, unless_shared
from bench.run.measure.speed import SpeedWindow
from bench.run.precision import PRECISIONS
from tests.fake_nvml import fake_nvml as spec_nvml
from tests.fake_nvml import refuse


def fake_nvml(energy_mj=None, clocks=(1980,), masks=(0,), power_mw=300_000):
    """NVML spec'd from the installed nvidia-ml-py (tests/fake_nvml.py): `energy_mj` is a list of successive counter
    values (None: no counter on this GPU), `clocks` successive SM clocks, `masks` successive clock-event reasons."""
    nvml = spec_nvml(energy_mj=energy_mj or (0,), mask=masks, power=(power_mw, 700_000, 700_000))
    clock_list = list(clocks)
    nvml.nvmlDeviceGetClockInfo.side_effect = lambda handle, kind: clock_list.pop(0) if len(clock_list) > 1 \
        else clock_list[0]
    if energy_mj is None:
        refuse(nvml.nvmlDeviceGetTotalEnergyConsumption)
    return nvml


@pytest.fixture
def nvml(monkeypatch):
    def install(**kwargs):
        module = fake_nvml(**kwargs)
        monkeypatch.setitem(sys.modules, "pynvml", module)
        return module
    return install


def test_nvml_counter_gives_joules_per_sample_over_the_window(nvml):
    nvml(energy_mj=[0, 1_000_000, 1_250_000])  # opening reads once; 250 J between the window's two reads
    run = RunEnergy("cuda")
    assert run.counter is not None and run.counter.source == "nvml"
    window = types.SimpleNamespace(timing_done=False, windows=[], listeners=[])
    window.timed_samples = lambda: sum(n for _, n, _ in window.windows)  # as SpeedWindow's, nothing open
    listener = run.over_window(window)
    assert window.listeners == [listener]
    listener.opened()  # the window's clock starts
    window.timing_done, window.windows = True, [(10, 500, 1.0), (10, 500, 1.0)]
    listener.closed()  # its timing is done
    row = run.result()
    assert row.train_joules_per_sample == pytest.approx(250 / 1000)
    assert row.energy_source == "nvml" and row.power_mean_w > 0
    assert row.sm_clock_start_mhz == 1980 and row.throttle_reasons == "none"


def test_throttle_reasons_seen_during_the_window_are_named_and_the_clock_minimum_kept(nvml):
    nvml(energy_mj=[0], clocks=(1980, 1410, 1755), masks=(0x1, 0x4 | 0x40, 0x1))  # idle, power cap + hw thermal
    run = RunEnergy("cuda")
    run.start_sampling()
    run.sampler.sample()
    run.stop_sampling()
    row = run.result()
    assert row.throttle_reasons == "sw_power_cap,hw_thermal"  # gpu_idle is not a slowdown
    assert (row.sm_clock_start_mhz, row.sm_clock_min_mhz, row.sm_clock_end_mhz) == (1980, 1410, 1755)


def test_a_gpu_without_an_energy_counter_leaves_energy_empty_with_the_reason(nvml):
    nvml(energy_mj=None)
    run = RunEnergy("cuda")
    assert run.counter is None and run.read() is None
    run.start_sampling()
    run.stop_sampling()
    row = run.result()
    assert row.train_joules_per_sample is None and row.energy_source == ""
    assert "no energy counter" in row.energy_note
    assert row.power_mean_w == pytest.approx(300.0)  # sampled power where there is no counter
    assert row.sm_clock_start_mhz == 1980  # clocks are still read


def test_no_nvml_at_all_never_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    row = RunEnergy("cuda").result()
    assert row.train_joules_per_sample is None and row.energy_note.startswith("energy not measured")


def rapl_tree(root, packages):
    for index, (value, limit) in enumerate(packages):
        zone = root / f"intel-rapl:{index}"
        (zone / f"intel-rapl:{index}:0").mkdir(parents=True)  # a sub-zone (core), not counted
        (zone / "energy_uj").write_text(str(value))
        (zone / "max_energy_range_uj").write_text(str(limit))
    return root


def test_rapl_counter_sums_packages_and_undoes_wraparound(tmp_path, monkeypatch):
    root = rapl_tree(tmp_path, [(999_000_000, 1_000_000_000), (5_000_000, 1_000_000_000)])
    monkeypatch.setattr(energy_counters, "RAPL_ROOT", root)
    monkeypatch.delenv("DNNBENCH_CPUS", raising=False)
    zones, reason = energy_counters.rapl_packages(root)
    assert [z.name for z in zones] == ["intel-rapl:0", "intel-rapl:1"] and not reason
    run = RunEnergy("cpu")
    start = run.read()
    (root / "intel-rapl:0" / "energy_uj").write_text("2000000")  # wrapped: 1 J to the limit, then 2 J
    (root / "intel-rapl:1" / "energy_uj").write_text("8000000")  # +3 J
    assert run.read() - start == pytest.approx(6.0)
    assert run.result().energy_source == "rapl"


def test_unreadable_or_absent_rapl_leaves_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(energy_counters, "RAPL_ROOT", tmp_path / "absent")
    assert "no RAPL" in RunEnergy("cpu").result().energy_note
    root = rapl_tree(tmp_path / "rapl", [(1, 10)])
    (root / "intel-rapl:0" / "energy_uj").write_text("not a number")
    monkeypatch.setattr(energy_counters, "RAPL_ROOT", root)
    assert "RAPL not readable" in RunEnergy("cpu").result().energy_note


def test_a_shared_gpu_empties_the_energy_cells():
    row = Energy(train_joules_per_sample=0.2, power_mean_w=300.0, energy_source="nvml").columns()
    row["foreign_gpu_processes"] = 2
    emptied = unless_shared(row)
    assert emptied["train_joules_per_sample"] is None and "2 other process(es)" in emptied["energy_note"]
    assert unless_shared(row | {"foreign_gpu_processes": 0}) == {}


def test_inference_and_target_energy():
    class FakeCounter:
        source, value = "rapl", 0.0

        def joules(self):
            self.value += 1.0
            return self.value

    run = RunEnergy("cpu")
    run.counter, run.notes = FakeCounter(), []
    model = torch.nn.Linear(4, 2)
    run.measure_inference(model, (torch.randn(8, 4),), torch.device("cpu"), PRECISIONS["32-true"])
    assert run.values["infer_joules_per_sample"] > 0
    watch = types.SimpleNamespace(time_to_target=None)
    target = run.to_target(watch)
    target.on_train_start(None, None)
    target.on_validation_end(None, None)
    assert "energy_to_target_j" not in run.values  # not reached yet
    watch.time_to_target = 1.5
    target.on_validation_end(None, None)
    assert run.values["energy_to_target_j"] == pytest.approx(1.0)


def test_window_meter_follows_a_real_speed_window_and_leaves_validation_out():
    """Joules are read where each timed sub-window opens and closes: the seconds spent in validation between them
    (here 0.1 s per epoch, at 100 W) are not in the training energy."""
    class Watts100:  # a counter that rises at 100 W
        source = "rapl"

        def joules(self):
            return 100.0 * time.perf_counter()

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            return self.net(batch[0]).pow(2).mean()

        def validation_step(self, batch, batch_idx):
            time.sleep(0.1)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 4)), batch_size=4)
    run = RunEnergy("cpu")
    run.counter, run.notes = Watts100(), []
    window = SpeedWindow(warmup=2, timed=40, profiled=0)
    run.over_window(window)
    trainer = L.Trainer(accelerator="cpu", max_epochs=4, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=1, callbacks=[window])
    trainer.fit(Tiny(), data, data)
    assert window.timing_done and trainer.current_epoch >= 2  # the window spans at least one validation
    samples = sum(n for _, n, _ in window.windows)
    timed_s = sum(s for _, _, s in window.windows)
    joules = run.result().train_joules_per_sample * samples
    assert joules == pytest.approx(100.0 * timed_s, rel=0.05, abs=0.5)  # not the 10+ J of a validation
    assert run.values["power_mean_w"] == pytest.approx(100.0, rel=0.05)


def test_energy_columns_are_documented_and_gated_lower_is_better():
    names = of_group("energy")
    assert {"train_joules_per_sample", "infer_joules_per_sample", "energy_to_target_j"} <= set(GATED)
    assert all(BY_NAME[n].better == "min" for n in names if n in GATED)
    assert set(Energy().columns()) == set(names)


@pytest.mark.gpu
def test_gpu_row_has_clocks_power_and_energy(tmp_path):
    """On a real GPU (Volta or newer): the counter rises over the window and every energy cell is filled."""
    from bench.core.config import RunConfig
    from bench.run import session

    config = RunConfig(model="cnn", datamodule="mnist5k", device="cuda", profile="quick")
    measured = session.train_and_measure(config, tmp_path)
    row = {name: value for piece in measured.pieces for name, value in piece.columns().items()}
    assert row["energy_source"] == "nvml", row["energy_note"]
    assert row["train_joules_per_sample"] > 0 and row["infer_joules_per_sample"] > 0
    assert row["power_mean_w"] > 0 and row["sm_clock_min_mhz"] > 0
    assert row["sm_clock_min_mhz"] <= min(row["sm_clock_start_mhz"], row["sm_clock_end_mhz"])
    assert row["throttle_reasons"]  # `none` or the reasons seen


def test_a_window_cut_short_by_the_fit_still_gives_energy():
    class Counter:
        source, value = "rapl", 0.0

        def joules(self):
            self.value += 1.0
            return self.value

    run = RunEnergy("cpu")
    run.counter, run.notes = Counter(), []
    window = types.SimpleNamespace(timing_done=False, windows=[], listeners=[])
    window.timed_samples = lambda: sum(n for _, n, _ in window.windows)  # as SpeedWindow's, nothing open
    listener = run.over_window(window)
    listener.opened()
    window.windows = [(3, 30, 0.1)]  # the smoke profile's few steps, closed when the fit ended
    listener.closed()
    assert run.result().train_joules_per_sample == pytest.approx(1.0 / 30)
