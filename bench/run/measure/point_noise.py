"""An inference point's noise (step: one point's timed calls -> the other CPU use over them, inference.csv's noise
columns): the results row's reading (bench/run/measure/noise.py) covered the training, not the curve after it."""

from __future__ import annotations

import os
import time

from bench.run.measure.noise import OwnClock, busy_cpu_seconds, other_cores, warning, watched_cpus


class PointWatch:
    """Other CPU use over one short stretch (an inference point's timed calls): the watched cores' busy time minus
    the run's own clock, read at both ends (no thread: a point lasts a second or so). Never raises: a reading that
    fails leaves the point's noise cells empty."""

    def start(self) -> PointWatch:
        try:
            self.cpus = watched_cpus()
            self.cores = len(self.cpus) if self.cpus else (os.cpu_count() or 1)
            self.own = OwnClock()
            self.first: tuple[float, float, float] | None = (time.monotonic(), busy_cpu_seconds(self.cpus),
                                                             self.own.read())
        except Exception:
            self.first = None
        return self

    def stop(self) -> dict[str, object]:
        """{"other_cpu_cores": cores, "noise_warning": why, or ""} (inference.csv's noise columns), or {}."""
        if self.first is None:
            return {}
        try:
            end = (time.monotonic(), busy_cpu_seconds(self.cpus), self.own.read())
        except Exception:
            return {}
        other = other_cores(end[1] - self.first[1], end[2] - self.first[2], end[0] - self.first[0])
        return {"other_cpu_cores": other, "noise_warning": warning(other, {}, None, self.cores)}
