"""A `celery -A tasks worker` of a benchmark: its pool, its own log, its process tree.

The README's deployment runs the thread pool (`--pool threads --concurrency 16`); the
benchmarks also run the prefork pool (`--pool prefork --concurrency <cores>` by default)
to compare. Each worker writes a log file of its own, named after the benchmark round,
so figures read from a log (waits, the status timeline) are that run's only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.stack import DevStack

POOLS = ("threads", "prefork")


@dataclass(frozen=True)
class Pool:
    """A worker pool: `threads:16`, `prefork:2`, or `prefork` (one process per core)."""

    kind: str
    concurrency: int

    @classmethod
    def parse(cls, text: str) -> Pool:
        kind, _, number = text.strip().partition(":")
        if kind not in POOLS:
            raise ValueError(f"pool {text!r}: one of {', '.join(POOLS)}, e.g. threads:16")
        if not number:
            if kind == "threads":
                raise ValueError("threads needs a concurrency, e.g. threads:16")
            return cls(kind, os.cpu_count() or 1)
        if not number.isdigit() or int(number) < 1:
            raise ValueError(f"pool {text!r}: the concurrency is a positive integer")
        return cls(kind, int(number))

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.concurrency}"


def pools_option(text: str) -> list[Pool]:
    """argparse type of a comma-separated pool list: `threads:16,prefork:2`."""
    try:
        return [Pool.parse(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


@dataclass
class Worker:
    """A running worker process (the pool's main process) and the log only it writes."""

    process: subprocess.Popen[bytes]
    pool: Pool
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def start_worker(
    dev: DevStack,
    pool: Pool,
    env: dict[str, str],
    *,
    name: str,
    queues: str = "replay,verify,track",
) -> Worker:
    """Spawn a worker with its output in `<workdir>/<name>.log`, which must be new."""
    log = dev.workdir / f"{name}.log"
    if log.exists():
        raise FileExistsError(f"{log} exists: each worker run needs a log of its own")
    argv = [
        sys.executable, "-m", "celery", "-A", "tasks", "worker",
        "--pool", pool.kind, "--concurrency", str(pool.concurrency), "-Q", queues,
        "--hostname", f"{name}@%h", "--without-mingle", "--without-gossip",
        "--loglevel", "INFO",
    ]  # fmt: skip
    return Worker(dev.spawn(argv, name, env), pool, log)


def wait_ready(worker: Worker, timeout: float = 60.0) -> float:
    """Until the worker's log says it is consuming (celery logs 'ready.'); seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if worker.log.exists() and "ready." in worker.log.read_text(errors="replace"):
            return time.monotonic() - started
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.process.returncode}; see {worker.log}")
        time.sleep(0.05)
    raise TimeoutError(f"worker not ready after {timeout:.0f} s; see {worker.log}")
