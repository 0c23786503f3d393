"""Proof of work for container health checks, without asking the broker anything.

Each long-running process touches a heartbeat file of its service while it does its
job: a worker's consumer while it is connected to the broker and its pool runs, beat's
scheduler on each tick, the poller after each receive. `dlq-replay health --service X`
reads the file's age: older than `--max-age` (or missing) is unhealthy. A process
removes its file as it starts, so a restarted container never inherits a fresh one, and
as it stops or finds that it cannot work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

#: The services that prove their work so (the `--service` of `dlq-replay health`).
SERVICES = ("worker", "beat", "poller")
#: `dlq-replay health`'s default `--max-age`: above the poller's longest receive (20 s),
#: beat's and a worker's interval (10 s), and one missed proof of each.
DEFAULT_MAX_AGE_SECONDS = 60.0


@dataclass(frozen=True)
class Heartbeat:
    """One service's heartbeat file."""

    path: Path

    @classmethod
    def of(cls, service: str, directory: Path) -> Heartbeat:
        if service not in SERVICES:
            raise ValueError(f"no heartbeat for {service!r}: one of {', '.join(SERVICES)}")
        return cls(directory / f"{service}.alive")

    def beat(self) -> None:
        """Record that the process did its job just now."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()

    def clear(self) -> None:
        """Withdraw the proof (at start, at stop, when the process finds it cannot work)."""
        self.path.unlink(missing_ok=True)

    def age(self) -> float | None:
        """Seconds since the last proof; None when there is none."""
        try:
            return max(0.0, time.time() - self.path.stat().st_mtime)
        except FileNotFoundError:
            return None


def unhealthy(service: str, directory: Path, *, max_age: float) -> str | None:
    """Why `service` is unhealthy, in one line; None when it proved its work in time."""
    heartbeat = Heartbeat.of(service, directory)
    age = heartbeat.age()
    if age is None:
        return (
            f"the {service} has not proved its work since it started (no {heartbeat.path}): "
            "it is starting, stopped, or found it cannot work (its log's ERROR line says why)"
        )
    if age > max_age:
        return (
            f"the {service} last proved its work {age:.0f} s ago (more than {max_age:g} s): "
            f"{_stuck[service]}"
        )
    return None


_stuck = {
    "worker": "its consumer is not running (the broker connection is lost, or the pool "
    "died): see its log",
    "beat": "its scheduler is not ticking: see its log",
    "poller": "it has not completed a receive from the DLQ: see its log",
}
