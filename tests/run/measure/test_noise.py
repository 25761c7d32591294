"""bench/run/measure/noise.py: other load on the machine during a run (system-wide accounting minus the run's own
process tree), and the warning a row carries."""

import json
import os
import subprocess
import sys
import time

import pytest

from bench.run.measure import noise
from tests.helpers import ROOT


def test_other_processes_cpu_time_counts_outside_the_run_only():
    start = {1: (100.0, "sweep", 5.0), 2: (100.0, "burner", 10.0), 3: (100.0, "idle", 1.0), 4: (50.0, "old", 9.0)}
    end = {1: (100.0, "sweep", 9.0), 2: (100.0, "burner", 16.0), 3: (100.0, "idle", 1.0), 4: (300.0, "new", 2.0),
           5: (300.0, "started", 1.0)}
    cores = noise.other_process_cores(start, end, ours={1}, seconds=4.0)
    # burner: 6 s in 4 s; pid 4 was reused by a new process (2 s); pid 5 started during the run; idle used none
    assert cores == {"burner (2)": 1.5, "new (4)": 0.5, "started (5)": 0.25}


@pytest.mark.integration
def test_a_run_forked_from_the_warm_server_counts_the_sweep_behind_it_as_harness():
    """The run's parent is the warm server (started as `start.py warm-server`); the sweep that started the server is
    the harness too, not other load. Before the server's command line changed, `warm_server` was what was matched."""
    child = "from bench.run.measure.noise import harness_pids; print(harness_pids())"
    server = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    done = subprocess.run([sys.executable, "-c", server, "warm-server"], capture_output=True, text=True,
                          check=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert os.getpid() in json.loads(done.stdout)


def test_warning_only_when_others_used_the_device():
    assert noise.warning(0.1, {}, 0, cpu_count=2) == ""
    text = noise.warning(1.5, {"burner (2)": 1.5}, None, cpu_count=2)
    assert text.startswith("shared device:") and "1.5 of 2 CPU cores" in text and "burner (2)" in text
    assert "2 other process(es) on its GPU" in noise.warning(0.0, {}, 2, cpu_count=64)
    assert noise.warning(3.0, {}, 0, cpu_count=64) == ""  # 3 of 64 cores busy elsewhere: below 10% of the machine


def test_warning_when_others_shared_part_of_the_run():
    """A second sweep that ran for a third of a long run averages below the level yet slowed what it overlapped."""
    text = noise.warning(0.39, {}, None, cpu_count=2, shared_s=93.0, run_s=255.0)
    assert "for 93 s of its 255 s" in text
    assert noise.warning(0.05, {}, None, cpu_count=2, shared_s=1.0, run_s=255.0) == ""  # a one-second blip
    assert noise.warning(0.05, {}, None, cpu_count=2, shared_s=5.0, run_s=255.0) == ""  # under 10 % of the run


def test_watch_counts_the_seconds_others_shared(monkeypatch):
    """Sampled intervals with others at the sharing level add up; quieter ones do not."""
    watch = noise.NoiseWatch()
    watch.cores, watch.previous = 2, (0.0, 0.0, 0.0)
    samples = iter([(1.0, 2.0, 1.0), (2.0, 3.2, 2.0), (3.0, 5.0, 3.0)])  # others: 1.0, 0.2, 0.8 cores
    monkeypatch.setattr(watch, "sample", lambda: next(samples))
    for _ in range(3):
        watch.advance()
    assert watch.shared_s == 2.0 and watch.peak == 1.0


def test_foreign_gpu_processes_leave_out_the_run_itself():
    assert noise.foreign_gpu_count(None, {1}, True) is None  # NVML not available
    assert noise.foreign_gpu_count([1, 7], {1}, True) == 1
    assert noise.foreign_gpu_count([90, 91], {1}, True) == 1  # other pid namespace: one of them is the run


def test_noise_watch_records_load_and_other_processes():
    result = noise.NoiseWatch("cpu").start().stop()
    assert result.load_avg_start >= 0 and result.load_avg_end >= 0 and result.other_cpu_cores >= 0
    assert result.load_per_core_start == pytest.approx(result.load_avg_start / os.cpu_count())
    assert result.foreign_gpu_processes is None  # a CPU run does not ask NVML


class FakeCounters:
    """The machine's busy CPU seconds and ours, advanced by hand: what NoiseWatch reads, without the machine."""

    def __init__(self, monkeypatch, load=0.5):
        self.clock = self.busy = self.ours = 0.0
        monkeypatch.setattr(noise.time, "monotonic", lambda: self.clock)
        monkeypatch.setattr(noise, "busy_cpu_seconds", lambda cpus: self.busy)
        monkeypatch.setattr(noise.OwnClock, "read", lambda clock: self.ours)
        monkeypatch.setattr(noise.os, "getloadavg", lambda: (load, load, load))
        monkeypatch.setattr(noise.os, "cpu_count", lambda: 2)
        monkeypatch.setattr(noise, "watched_cpus", lambda: None)

    def second(self, ours, others):
        self.clock += 1.0
        self.busy += ours + others
        self.ours += ours


def watch_over(counters, seconds):
    watch = noise.NoiseWatch("cpu", sample_s=3600).start()  # the test advances it, not the thread
    for ours, others in seconds:
        counters.second(ours, others)
        watch.advance()
    return watch.stop()


def test_a_run_alone_is_not_flagged_whatever_it_uses_itself(monkeypatch):
    counters = FakeCounters(monkeypatch)
    result = watch_over(counters, [(2.0, 0.05)] * 10)  # both cores ours; a little kernel work
    assert result.other_cpu_cores == pytest.approx(0.05) and result.noise_warning == ""


def test_other_load_for_part_of_a_run_is_flagged_with_its_peak(monkeypatch):
    counters = FakeCounters(monkeypatch)
    result = watch_over(counters, [(1.0, 1.0)] * 6 + [(2.0, 0.0)] * 4)  # another job for 6 of 10 seconds
    assert result.other_cpu_cores == pytest.approx(0.6) and result.other_cpu_cores_peak == pytest.approx(1.0)
    assert "other processes used 0.6 of 2 CPU cores" in result.noise_warning


def test_a_run_that_starts_on_a_loaded_machine_is_flagged(monkeypatch):
    counters = FakeCounters(monkeypatch, load=3.4)  # 1.7 per core
    result = watch_over(counters, [(2.0, 0.0)] * 3)
    assert result.load_per_core_start == pytest.approx(1.7)
    assert "loaded when it started (load average 1.7 per core)" in result.noise_warning


@pytest.mark.integration
def test_own_clock_counts_children_that_exited_and_never_goes_back(monkeypatch):
    clock = noise.OwnClock()
    before = clock.read()
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)  # exited and reaped: in our children's times
    assert clock.read() - before >= 0.3
    monkeypatch.setattr(noise.os, "times", lambda: os.times_result((0.0, 0.0, 0.0, 0.0, 0.0)))
    assert clock.read() >= before + 0.3  # a vanished share is kept as used


BURNERS = """
import subprocess, sys, time
burn = "import time\\nend = time.time() + 0.4\\nwhile time.time() < end: pass"
end = time.time() + float(sys.argv[1])
while time.time() < end:  # two at a time, each alive 0.4 s: none is alive at both ends of the run
    for process in [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(2)]:
        process.wait()
"""
RUN = """
import json, sys, time
from bench.run.measure.noise import NoiseWatch
watch = NoiseWatch("cpu", sample_s=0.5).start()
time.sleep(float(sys.argv[1]))  # the run's length
print(json.dumps(watch.stop().columns()))
"""


@pytest.mark.integration
def test_a_run_beside_a_stream_of_short_lived_processes_is_flagged(tmp_path):
    burners = subprocess.Popen([sys.executable, "-c", BURNERS, "60"])  # not the run's: its parent's children
    try:  # the burners run until the run below has ended (60 s: a bound, never waited for)
        time.sleep(0.5)
        run = subprocess.run([sys.executable, "-c", RUN, "2"], capture_output=True, text=True, check=True,
                             env=os.environ | {"PYTHONPATH": str(ROOT)})
    finally:
        burners.kill()
        burners.wait()
    result = json.loads(run.stdout)
    assert result["other_cpu_cores"] >= 0.5 and "other processes used" in result["noise_warning"], result


def test_a_sampling_thread_that_woke_seconds_late_means_the_run_did_not_run(monkeypatch):
    """Due every second, a sample 6 s after the previous one: the run's process was stopped or starved for 5 s; 1 s
    late (under PAUSED_MIN_S) counts nothing, and nothing counts once the thread no longer samples."""
    watch = noise.NoiseWatch(sample_s=1.0)
    watch.cores, watch.previous, watch.sampling = 2, (0.0, 0.0, 0.0), True
    samples = iter([(1.0, 0.0, 0.0), (7.0, 0.0, 0.0), (9.0, 0.0, 0.0), (9.5, 0.0, 0.0), (30.0, 0.0, 0.0)])
    monkeypatch.setattr(watch, "sample", lambda: next(samples))
    for _ in range(4):
        watch.advance()
    assert watch.paused_s == 5.0
    watch.sampling = False  # the thread ended on an error: a long last interval says nothing
    watch.advance()
    assert watch.paused_s == 5.0
    text = noise.warning(0.0, {}, None, cpu_count=2, run_s=30.0, paused_s=watch.paused_s)
    assert "did not run for 5 s of its 30 s" in text
    assert noise.warning(0.0, {}, None, cpu_count=2, run_s=20.0, paused_s=1.0) == ""


STOPPED_RUN = """
import json, time
from bench.run.measure.noise import NoiseWatch
watch = NoiseWatch("cpu", sample_s=0.5).start()
print("watching", flush=True)
time.sleep(2.0)  # the run's length, with the stop inside it
print(json.dumps(watch.stop().columns()))
"""


@pytest.mark.integration
def test_a_run_stopped_for_seconds_is_flagged():
    """SIGSTOP for 3 s in the middle of a run (the issue's 5 s SIGSTOP was not flagged)."""
    import signal

    run = subprocess.Popen([sys.executable, "-c", STOPPED_RUN], stdout=subprocess.PIPE, text=True,
                           env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert run.stdout is not None and run.stdout.readline() == "watching\n"
    run.send_signal(signal.SIGSTOP)
    time.sleep(3.0)
    run.send_signal(signal.SIGCONT)
    out, _ = run.communicate(timeout=60)
    assert "did not run for" in json.loads(out)["noise_warning"], out
