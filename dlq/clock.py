"""The clock seam: every decision that depends on "now" asks a `Clock`.

Production code uses `SYSTEM_CLOCK`; unit tests use a `FakeClock` and move time on
with `advance()` instead of sleeping against TTLs and deadlines.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time as epoch seconds (what the ledger stores and compares)."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass (a short backoff inside one task)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


SYSTEM_CLOCK: Clock = SystemClock()


class FakeClock:
    """A clock that stands still until told to move (thread-safe)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """A sleep on a fake clock moves it on at once."""
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> float:
        """Move time forward by `seconds`; answers the new time."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += seconds
            return self._now


def iso(epoch: float) -> str:
    """A moment as the ledger writes it: ISO 8601, UTC, milliseconds (sortable as text)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def moment(epoch: float) -> datetime:
    """A moment as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch, UTC)


def parse_iso(value: str | None) -> datetime | None:
    """An ISO 8601 moment as an aware datetime (naive ones are UTC); None when unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
