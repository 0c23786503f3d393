"""Pausing a target: the ledger keeps the truth, Redis the fleet's fast copy.

`pause` and `resume` write the ledger's pauses item (`dlq.ledger.pauses`) first, then
the copy in Redis, so a worker sees the change at once; a worker that finds no copy (a
Redis restarted empty, or the copy's short TTL over) reads the ledger once and puts the
copy back for `cache_seconds`. A Redis that loses everything therefore never loses a
pause: the next check rebuilds it from the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import redis

from dlq.fleet import fleet_key
from dlq.ledger.pauses import Pause, PauseBook, PauseConflict
from dlq.observe import NO_METRICS, MetricsObserver

log = logging.getLogger("dlq.holds")

COPY_KEY = fleet_key("holds", "pauses")
#: The copy written by an operator's command lives this long (a worker's, `cache_seconds`).
OPERATOR_COPY_SECONDS = 300


class PauseStore(Protocol):
    """Where the pauses are kept for good (`LedgerPauses`, `MemoryPauses`)."""

    def read(self) -> PauseBook: ...

    def write(self, book: PauseBook, *, now: float) -> PauseBook: ...


class Pauses:
    """The fleet's pauses: read by workers at every attempt, changed by operators."""

    def __init__(
        self,
        store: PauseStore,
        client: redis.Redis,
        *,
        cache_seconds: float = 10.0,
        metrics: MetricsObserver = NO_METRICS,
    ) -> None:
        self._store = store
        self._redis = client
        self._cache_seconds = cache_seconds
        self._metrics = metrics

    def book(self) -> PauseBook:
        """The pauses as the fleet's copy has them, rebuilt from the ledger when missing."""
        raw = self._redis.get(COPY_KEY)
        if raw is not None:
            return PauseBook.from_json(raw)
        book = self._store.read()
        # NX: a copy an operator's command wrote meanwhile is newer than this read.
        self._redis.set(COPY_KEY, book.to_json(), ex=max(1, round(self._cache_seconds)), nx=True)
        return book

    def pause(
        self,
        target_arn: str,
        *,
        now: float,
        reason: str,
        operator: str,
        until: float | None = None,
    ) -> Pause:
        """Pause the target (again: a new reason or end replaces the old)."""
        pause = Pause(target_arn, since=now, reason=reason, operator=operator, until=until)
        self._change(lambda book: book.paused(pause, now=now), now=now)
        ends = f" until epoch {until:.0f}" if until is not None else " until resumed"
        log.warning(
            f"target paused{ends} by {operator}: {reason}",
            extra={"target_arn": target_arn, "outcome": "paused"},
        )
        self._metrics.target_hold(target_arn, "paused")
        return pause

    def resume(self, target_arn: str, *, now: float, operator: str) -> Pause | None:
        """End the target's pause; the pause that was in effect, or None if there was none."""
        was = self._change(lambda book: book.resumed(target_arn, now=now), now=now).get(target_arn)
        if was is None or not was.in_effect(now):
            return None
        log.warning(
            f"target resumed by {operator} (paused by {was.operator}: {was.reason})",
            extra={"target_arn": target_arn, "outcome": "resumed"},
        )
        self._metrics.target_hold(target_arn, "resumed")
        return was

    def stored(self) -> PauseBook:
        """The pauses as the ledger has them (when Redis cannot answer)."""
        return self._store.read()

    def listed(self, *, now: float) -> list[Pause]:
        """The pauses in effect, from the ledger (an operator's view: the truth)."""
        return self._store.read().in_effect(now)

    def _change(self, edit: Callable[[PauseBook], PauseBook], *, now: float) -> dict[str, Pause]:
        """Apply `edit` to the stored book (retried on a concurrent change); publish it.
        Answers the pauses as they were before."""
        for _ in range(10):
            before = self._store.read()
            try:
                after = self._store.write(edit(before), now=now)
            except PauseConflict:
                continue
            self._redis.set(COPY_KEY, after.to_json(), ex=OPERATOR_COPY_SECONDS)
            return dict(before.current)
        raise PauseConflict("the pauses kept changing under this command: run it again")
