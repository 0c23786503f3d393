"""Batch verification: the conversations waiting in the to-verify list, a batch per call.

One run at a time across the fleet (a Redis lock): take up to a batch of the oldest
waiting ids, verify them with the directory's `prefetch` at the limiter's HIGH priority
(it gates redeliveries), drop them from the list, and schedule the next run while ids
remain. A partial batch waits for its burst to end (no new id for `gather_seconds`), at
most `max_hold_seconds` after its oldest id was marked; while the poller drains the DLQ
(`dlq.arrivals`), whose conversations' passes wait for the drain anyway, it waits to fill
up to `drain_hold_seconds` after its oldest id, and goes when the drain ends (the poller
kicks a run): a trickle of conversations is verified in full batches, not one small
batch every few seconds. Nothing depends on a run
happening: a replay that finds no cache entry looks its conversation up on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import redis
from redis.exceptions import LockError

from dlq.arrivals import Arrivals
from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.errors import ConfigurationError, GiveUp, RetryLater
from dlq.genesys.directory import ConversationDirectory
from dlq.genesys.pending import PendingVerifications
from dlq.ratelimit import Priority

log = logging.getLogger(__name__)

LOCK_KEY = "dlq:verify:lock"
#: A run refused the lock comes back after this long.
BUSY_RETRY_SECONDS = 1.0
#: A run that failed transiently without a server-given wait comes back after this long.
RETRY_SECONDS = 5.0


class PrefetchOutcome(StrEnum):
    IDLE = "idle"  # nothing waits
    BUSY = "busy"  # another run holds the lock
    GATHERING = "gathering"  # a partial batch waits for its burst to end
    VERIFIED = "verified"
    WAITING = "waiting"  # the budget (or Genesys) said later; the ids stay


@dataclass(frozen=True, slots=True)
class PrefetchRun:
    """What one run did, and in how many seconds the next one is due (None: not needed)."""

    outcome: PrefetchOutcome
    verified: int = 0
    absent: int = 0
    calls: int = 0
    again_in: float | None = None


class Prefetcher:
    """Runs the batch verification of the to-verify list."""

    def __init__(
        self,
        *,
        directory: ConversationDirectory,
        pending: PendingVerifications,
        lock_client: redis.Redis,
        max_hold_seconds: float = 5.0,
        arrivals: Arrivals | None = None,
        drain_hold_seconds: float = 0.0,
        max_batches: int = 10,
        lock_seconds: float = 180.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """`lock_seconds` must outlast a run (up to `max_batches` calls, each bounded by
        the Genesys timeouts); `max_hold_seconds` should stay well below
        GENESYS_VERIFY_WAIT_SECONDS, which is how long replays wait for a run before
        looking up on their own. A run takes batch after batch while full ones wait: the
        next run would queue behind the redeliveries its batches release.
        `drain_hold_seconds` should end before the passes' arrival hold does
        (REPLAY_INGEST_MAX_HOLD_SECONDS), so that they find their conversations verified."""
        self._directory = directory
        self._arrivals = arrivals
        self._drain_hold = drain_hold_seconds
        self._pending = pending
        self._redis = lock_client
        self._max_hold = max_hold_seconds
        self._max_batches = max_batches
        self._lock_seconds = lock_seconds
        self._clock = clock

    def run(self) -> PrefetchRun:
        """One batch, then the next run scheduled (debounced) when one is due."""
        lock = self._redis.lock(LOCK_KEY, timeout=self._lock_seconds, blocking=False)
        if not lock.acquire(blocking=False):
            # Comes back after the run in progress, whatever the flag says: a kick (the
            # drain's end) sets the flag for this run, and the run in progress, which
            # began before the kick, cannot schedule past that flag either.
            self._pending.kick(after=BUSY_RETRY_SECONDS)
            return PrefetchRun(PrefetchOutcome.BUSY, again_in=BUSY_RETRY_SECONDS)
        try:
            done = self._run_locked()
        finally:
            try:
                lock.release()
            except LockError:
                log.warning("the verification lock expired before its release", extra={})
        if done.again_in is not None:
            self._pending.ensure_scheduled(done.again_in)
        return done

    def _run_locked(self) -> PrefetchRun:
        self._pending.starting()
        done = PrefetchRun(PrefetchOutcome.IDLE)
        for _ in range(self._max_batches):
            batch = self._batch(self._directory.batch_size())
            done = PrefetchRun(
                batch.outcome if done.outcome is PrefetchOutcome.IDLE else done.outcome,
                verified=done.verified + batch.verified,
                absent=done.absent + batch.absent,
                calls=done.calls + batch.calls,
                again_in=batch.again_in,
            )
            if batch.outcome is not PrefetchOutcome.VERIFIED:
                break
        return done

    def _batch(self, size: int) -> PrefetchRun:
        """One multi-get of the oldest waiting ids, unless a partial batch should gather."""
        waiting = self._pending.oldest(size)
        if not waiting:
            return PrefetchRun(PrefetchOutcome.IDLE)
        if len(waiting) < size:
            hold = self._hold(oldest=waiting[0][1])
            if hold > 0:
                return PrefetchRun(PrefetchOutcome.GATHERING, again_in=hold)
        ids = [conversation_id for conversation_id, _ in waiting]
        try:
            report = self._directory.prefetch(ids, priority=Priority.HIGH)
        except (RetryLater, ConfigurationError) as exc:
            # The ids stay: the next run takes them, and a replay that cannot wait any
            # longer looks its conversation up on its own.
            wait = getattr(exc, "retry_after", None) or RETRY_SECONDS
            log.info(
                f"batch verification postponed {wait:.1f} s: {exc}",
                extra={"outcome": "waiting", "count": len(ids), "retry_in": wait},
            )
            return PrefetchRun(PrefetchOutcome.WAITING, again_in=wait)
        except GiveUp as exc:
            # Most likely a 403 (no analytics:conversationDetail:view): every id falls
            # back to its own lookup.
            log.warning(
                f"batch verification refused; these conversations are looked up one by "
                f"one instead: {exc}",
                extra={"outcome": "failed", "count": len(ids)},
            )
            self._pending.remove(ids)
            return PrefetchRun(PrefetchOutcome.WAITING, again_in=self._next())
        self._pending.remove(ids)
        log.info(
            f"verified a batch of conversations: {len(report.found)} found, "
            f"{len(report.absent)} left to their own lookup, {report.calls} calls",
            extra={"outcome": "verified", "count": len(ids)},
        )
        return PrefetchRun(
            PrefetchOutcome.VERIFIED,
            verified=len(report.found),
            absent=len(report.absent),
            calls=report.calls,
            again_in=self._next(),
        )

    def _hold(self, *, oldest: float) -> float:
        """Seconds a partial batch still waits: until no id came for `gather_seconds`,
        and never beyond `max_hold_seconds` after its oldest id; while the DLQ drains,
        `drain_hold_seconds` after its oldest id."""
        now = self._clock.now()
        if self._drain_hold > self._max_hold and self._arrivals and self._arrivals.is_draining():
            return oldest + self._drain_hold - now
        newest = self._pending.newest() or oldest
        quiet = newest + self._pending.gather_seconds - now
        return min(quiet, oldest + self._max_hold - now)

    def _next(self) -> float | None:
        return 0.0 if self._pending.count() else None
