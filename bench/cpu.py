"""Where the CPU of a run went: per process (and process tree), from the kernel, no dependency.

A process's CPU is read from its CPU-time clock (`clock_gettime` on the clock id that
glibc's `clock_getcpuclockid(pid)` answers), in nanoseconds, every thread of it counted,
those that ended too; where the kernel refuses it, user + system time from
`/proc/<pid>/stat`, in clock ticks (10 ms). Ticks are too coarse for a worker at rest:
3 s of an idle worker is one tick or none, and its idle rate, multiplied by a run's
minute, moved a worker's busy CPU by about 3.5 %. A worker is measured as a tree: the
Celery main process with its prefork children (those alive now, plus those that exited
and were reaped, which the kernel adds to the parent's cutime/cstime, in ticks). The
benchmark process itself is measured alone: it is the parent of every stand-in, and a
stand-in it reaped would otherwise be charged to it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Names measured as one process, never as a tree (see the module's docstring).
OWN_ONLY = frozenset({"bench"})


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    return stat.rsplit(")", 1)[1].split()


def _cpu_clock(pid: int) -> int:
    """The id of a process's CPU-time clock: Linux's `MAKE_PROCESS_CPUCLOCK(pid,
    CPUCLOCK_SCHED)`, what glibc's `clock_getcpuclockid` answers (the kernel's
    posix-cpu-timers.c lets any process read a thread-group leader's)."""
    return ((~pid) << 3) | 2


def cpu_seconds(pid: int) -> float:
    """CPU a process has used so far, all its threads: its CPU-time clock (nanoseconds), or
    /proc/<pid>/stat utime + stime (ticks) where the kernel does not answer it."""
    try:
        return time.clock_gettime(_cpu_clock(pid))
    except OSError:
        fields = _stat_fields(pid)
        if fields is None:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children_by_parent() -> dict[int, list[int]]:
    """Every live process's children, from one scan of /proc."""
    by_parent: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            by_parent.setdefault(int(fields[1]), []).append(int(entry.name))
    return by_parent


def tree(pid: int, by_parent: Mapping[int, list[int]] | None = None) -> list[int]:
    """`pid` and its live descendants."""
    by_parent = _children_by_parent() if by_parent is None else by_parent
    pids, k = [pid], 0
    while k < len(pids):
        pids += by_parent.get(pids[k], [])
        k += 1
    return pids


def tree_cpu_seconds(pid: int, by_parent: Mapping[int, list[int]] | None = None) -> float:
    """CPU of a process tree: every live member, plus the children they reaped."""
    total = 0.0
    for member in tree(pid, by_parent):
        fields = _stat_fields(member)
        if fields is not None:
            total += cpu_seconds(member) + (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    return total


def peak_rss_mb(pid: int, *, include_children: bool = False) -> float:
    """Peak resident set (VmHWM) in MiB: of the process, or summed over its live tree."""
    total_kb = 0
    for member in tree(pid) if include_children else [pid]:
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total_kb += int(line.split()[1])
                break
    return round(total_kb / 1024, 1)


def process_cpu(name: str, pid: int, by_parent: Mapping[int, list[int]] | None = None) -> float:
    """CPU seconds of a named process of a run: a tree, except for `OWN_ONLY` names."""
    return cpu_seconds(pid) if name in OWN_ONLY else tree_cpu_seconds(pid, by_parent)


class CpuMeter:
    """CPU seconds of named processes (trees) between `start()` and `stop()`."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self._before: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        by_parent = _children_by_parent()
        return {name: process_cpu(name, pid, by_parent) for name, pid in self.pids.items()}

    def start(self) -> CpuMeter:
        self._before = self._now()
        return self

    def read(self) -> dict[str, float]:
        """CPU seconds of each process since `start()`."""
        now = self._now()
        return {name: round(now[name] - self._before.get(name, 0.0), 3) for name in self.pids}

    def stop(self) -> dict[str, float]:
        return self.read()


def cpu_split(
    seconds: Mapping[str, float], *, wall: float, events: int, cores: int | None = None
) -> dict[str, Any]:
    """Who used the CPU of a run: per process its seconds, share, cores busy, ms per event.

    `cores_busy` is CPU seconds over wall seconds: near 1.0 for a single-threaded server
    (node, redis-server, moto behind its GIL) means that server was saturated.
    """
    cores = cores or os.cpu_count() or 1
    total = sum(seconds.values())
    wall = max(wall, 1e-9)
    processes = {
        name: {
            "cpu_seconds": round(value, 3),
            "share": round(value / total, 3) if total else 0.0,
            "cores_busy": round(value / wall, 3),
            "ms_per_event": round(value * 1000 / events, 2) if events else 0.0,
        }
        for name, value in sorted(seconds.items(), key=lambda kv: -kv[1])
    }
    return {
        "wall_seconds": round(wall, 3),
        "events": events,
        "cores": cores,
        "total_cpu_seconds": round(total, 3),
        "machine_busy": round(total / (wall * cores), 3),
        "processes": processes,
    }


def format_split(split: Mapping[str, Any], *, indent: str = "    ") -> str:
    """A `cpu_split` as a small table."""
    rows: Iterable[tuple[str, Mapping[str, float]]] = split["processes"].items()
    header = f"{'process':<15} {'CPU s':>8} {'share':>6} {'cores busy':>10} {'ms/event':>9}"
    lines = [f"{indent}{header}"]
    for name, row in rows:
        lines.append(
            f"{indent}{name:<15} {row['cpu_seconds']:>8.2f} {row['share']:>6.0%} "
            f"{row['cores_busy']:>10.2f} {row['ms_per_event']:>9.2f}"
        )
    lines.append(
        f"{indent}{'all':<15} {split['total_cpu_seconds']:>8.2f} {'':>6} "
        f"{split['total_cpu_seconds'] / split['wall_seconds']:>10.2f}   "
        f"({split['machine_busy']:.0%} of {split['cores']} cores over "
        f"{split['wall_seconds']:.1f} s, {split['events']} events)"
    )
    return "\n".join(lines)
