"""The benchmarks read another process's CPU from its CPU-time clock, every thread counted.

No figure of speed is asserted: a child reports its own CPU clock, and the parent's
reading of the same clock, taken after, can be no less and is the child's to the
nanosecond, not rounded to the kernel's 10 ms ticks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bench.cpu import CLOCK_TICKS, cpu_seconds, tree, tree_cpu_seconds

#: Burns CPU in a thread that ends and in the main thread, prints its own process CPU
#: clock, then waits for stdin to close (using no CPU).
CHILD = """
import sys, threading, time

def burn():
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass

worker = threading.Thread(target=burn)
worker.start()
worker.join()
burn()
print(repr(time.process_time()), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def child() -> Iterator[tuple[int, float]]:
    """A child at rest after its work: its pid and the CPU it says it used."""
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdin is not None
    reported = float(process.stdout.readline())
    try:
        yield process.pid, reported
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def test_a_process_cpu_is_read_from_its_clock_with_the_thread_that_ended(
    child: tuple[int, float],
) -> None:
    pid, reported = child
    # The ended thread's 50 ms and the main thread's are both in it.
    assert reported >= 0.1
    seen = cpu_seconds(pid)
    # Read after the child read its own clock: at least that, and the child is at rest.
    assert seen >= reported
    assert seen - reported < 0.05
    # Finer than the ticks of /proc/<pid>/stat.
    assert seen * CLOCK_TICKS != int(seen * CLOCK_TICKS)


def test_a_tree_counts_its_live_children(child: tuple[int, float]) -> None:
    pid, reported = child
    own = cpu_seconds(os.getpid())
    # This process is the child's parent: the tree, read after, holds both.
    assert pid in tree(os.getpid())
    assert tree_cpu_seconds(os.getpid()) >= own + reported


def test_a_process_that_is_gone_has_used_nothing() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    assert cpu_seconds(process.pid) == 0.0
