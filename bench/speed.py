"""How fast the machine runs Python now: a fixed piece of work timed every half second.

A benchmark's CPU figures move with the machine as much as with the code: on the shared
2-core machines a CPU second buys 10-30 % more or less work from one minute to the next,
and a saturated machine less than a quiet one. `SpeedProbe` runs this module as a child
process beside a run: every `--every` seconds it times `work()` (dicts, JSON, strings:
what a worker's Python does; about 10 ms) on its own CPU clock and prints one line
`{"at": epoch seconds, "ms": CPU ms}`. The run then compares the work's median CPU over
two windows (`median`): the machine's speed in one against the other, measured by the
same work. It takes about 2 % of a core.

    .venv/bin/python -m bench.speed --every 0.5     # lines until stopped
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType

from devstack.process import die_with_parent

#: Items in one round of the work: about 10 ms of CPU on this project's machines.
ITEMS = 800


def work(items: int = ITEMS) -> int:
    """The same Python every time: build, serialise, parse and sum a few thousand dicts."""
    total = 0
    kept: dict[str, str] = {}
    for i in range(items):
        text = json.dumps({"id": f"event-{i}", "n": i, "tags": ["a", "b", str(i)]})
        kept[f"k{i % 97}"] = text
        total += len(json.loads(text)["tags"][2])
    return total + sum(len(v) for v in kept.values())


def timed_work() -> float:
    """CPU ms of one `work()` (this process's clock: waiting for a core is not counted)."""
    started = time.process_time()
    work()
    return (time.process_time() - started) * 1000


class SpeedProbe:
    """`bench.speed` as a child process, its samples read as they come (a context)."""

    def __init__(self, every: float = 0.5) -> None:
        self._argv = [sys.executable, "-m", "bench.speed", "--every", str(every)]
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self.samples: list[tuple[float, float]] = []

    def __enter__(self) -> SpeedProbe:
        self._process = subprocess.Popen(
            self._argv, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent
        )
        self._reader = threading.Thread(target=self._read, name="speed-probe", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            sample = json.loads(line)
            with self._lock:
                self.samples.append((float(sample["at"]), float(sample["ms"])))

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=10)

    def taken(self, *windows: tuple[float, float]) -> list[float]:
        """The work's CPU ms of the samples taken in any of `windows` (epoch seconds,
        from and until)."""
        with self._lock:
            return [ms for at, ms in self.samples if any(lo <= at <= hi for lo, hi in windows)]

    def median(self, *windows: tuple[float, float]) -> float | None:
        """The median of `taken(*windows)`; None when no sample was."""
        inside = self.taken(*windows)
        return round(statistics.median(inside), 3) if inside else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=0.5, help="seconds between samples")
    args = parser.parse_args(argv)
    timed_work()  # warm
    while True:
        ms = timed_work()
        print(json.dumps({"at": round(time.time(), 3), "ms": round(ms, 3)}), flush=True)
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
