"""The speed probe (`bench.speed`) runs as a child, and its medians keep to their windows.

How fast the work runs is for the benchmarks to report, never for a test: these check
that samples come, that each is a positive CPU figure, and which of them a window takes.
"""

from __future__ import annotations

import statistics
import time

import pytest
from helpers import eventually

from bench.speed import SpeedProbe, timed_work, work


def test_the_work_is_the_same_every_time_and_takes_cpu() -> None:
    assert work() == work()
    assert timed_work() > 0


def test_the_probe_samples_until_stopped_and_a_median_takes_only_its_windows() -> None:
    started = time.time()
    with SpeedProbe(every=0.05) as probe:
        eventually(lambda: len(probe.samples) >= 6, timeout=60, what="six samples")
    stopped = len(probe.samples)
    samples = list(probe.samples)

    assert all(started <= at and ms > 0 for at, ms in samples)
    first, later = samples[:3], samples[3:]
    window = (first[0][0], first[-1][0])
    assert probe.median(window) == pytest.approx(statistics.median(ms for _, ms in first), abs=1e-3)
    assert probe.median(window, (later[0][0], samples[-1][0])) == pytest.approx(
        statistics.median(ms for _, ms in samples), abs=1e-3
    )
    assert probe.median((0.0, started - 1)) is None
    time.sleep(0.2)
    assert len(probe.samples) == stopped  # the child has stopped
