"""The target gate: an open breaker or a paused target makes an item wait, not fail.

Waiting is not an attempt. Like a wait for Genesys (`dlq.replay.waiting`), an item whose
target is held goes back to `retry_scheduled` with its attempt returned, one `waiting`
entry in its history for the whole hold (`TargetBreakerOpen`, `TargetPaused`), and a
countdown bounded by the hold (the breaker's cool-down, the pause's recheck), never by
the attempt backoff, so the items come back promptly once the target is free.

A breaker wait is bounded by the item's age budget, as every wait is; a pause is not:
the time a target spent paused does not count toward its items' age
(`REPLAY_MAX_EVENT_AGE_SECONDS`), so a pause, however long, exhausts nothing.

The breaker hears every send: a failure that says the target is unwell (throttling,
5xx, a timeout, no connection) counts toward opening it; any answer of the target (a
delivery, or a refusal of one event) closes it. The failures that open it were attempts
(nobody knew yet); a probe that finds the target still down is not: its item waits
again with the others, its attempt returned, so a long outage exhausts no item. The
breaker's bookkeeping never fails a send: a Redis error there is logged, and the send
goes on as if there were no breaker.

Reads are shared by the process's deliveries. A read of a target's breaker that found it
closed with no failure stands for every delivery to it in this process for
`BREAKER_REUSE_SECONDS` (1 s); any other state is read again by each. What this process
tells the breaker (a failure, a success, a released probe) or learns from it (held, a
probe) drops its read at once; what other processes change is seen here at most 1 s
late: a breaker another worker opened lets this one's sends of that second go, as a send
that began before it opened does. The failures that open it are counted in Redis, fleet-
wide, whatever was read; a read that saw failures is never reused, so the success that
follows it clears them; a probe is taken in a transaction, never from a reused read.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.codes import TARGET_BREAKER_OPEN, TARGET_PAUSED
from dlq.holds.breaker import Admission, Breaker, BreakerState, admit
from dlq.holds.fleet import FleetBreakers
from dlq.holds.pauses import Pauses
from dlq.holds.report import rule_of
from dlq.ledger import LedgerItem, LedgerStore
from dlq.ledger.pauses import LedgerPauses, PauseBook
from dlq.memo import Memo
from dlq.observe import NO_METRICS, MetricsObserver
from dlq.replay.outcomes import Wait
from dlq.replay.recorded import age_start
from dlq.settings import Settings
from dlq.targets.errors import TargetFailed, TargetFatal, TargetThrottled, TargetUnavailable

log = logging.getLogger("dlq.replay")

#: Failures that say the target is unwell (not one event's fault).
UNWELL = (TargetThrottled, TargetUnavailable)
#: Answers of a target that is up, even when it refused the event.
ANSWERED = (TargetFatal, TargetFailed)
#: How long a worker reuses the pauses it read (every attempt checks them).
BOOK_REUSE_SECONDS = 1.0
BREAKER_OPEN = "target breaker open"
#: How long a read of a target's breaker that found it clean (closed, no failure) stands
#: for this process's other reads of it: other attempts' checks, and their sends.
BREAKER_REUSE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class BreakerRead:
    """A target's breaker as an attempt's `check` read it (or reused a read), and when it
    was read from Redis."""

    breaker: Breaker
    at: float

    @property
    def clean(self) -> bool:
        """Closed with no failure: a read worth reusing, and a success has nothing to clear."""
        return self.breaker.state is BreakerState.CLOSED and not self.breaker.failures

    def closed_at(self, now: float) -> bool:
        """Read closed, recently enough to stand for a read at `now`."""
        return (
            self.breaker.state is BreakerState.CLOSED and 0 <= now - self.at < BREAKER_REUSE_SECONDS
        )


class TargetHeld(Wait):
    """The item's target is held: the item waits under `code`, no attempt spent."""

    def __init__(self, reason: str, *, code: str, retry_after: float) -> None:
        super().__init__(reason, retry_after=retry_after)
        self.reason = reason
        self.code = code


class TargetHolds:
    """The gate every attempt passes: pauses first, then the target's breaker."""

    def __init__(
        self,
        *,
        breakers: FleetBreakers | None = None,
        pauses: Pauses | None = None,
        pause_recheck_seconds: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._breakers = breakers
        self._pauses = pauses
        self._recheck = pause_recheck_seconds
        self._clock = clock
        self._book: tuple[float, PauseBook] | None = None
        self._lock = threading.Lock()
        self._reads: Memo[str, BreakerRead] = Memo(
            BREAKER_REUSE_SECONDS, fresh=lambda read: read.clean, clock=clock.now
        )

    def check(self, claimed: LedgerItem) -> BreakerRead | None:
        """Raise `TargetHeld` when the item's target is paused or its breaker holds it;
        else the breaker as read (for `sending`), None when there is none to read.

        A clean read of the target's breaker by this process within the last
        `BREAKER_REUSE_SECONDS` stands for this one: no Redis command."""
        now = self._clock.now()
        pause = self._pause_book(now).active(claimed.target_arn, now) if self._pauses else None
        if pause is not None:
            left = self._recheck if pause.until is None else min(pause.until - now, self._recheck)
            raise TargetHeld(
                f"target paused by {pause.operator}: {pause.reason}",
                code=TARGET_PAUSED,
                retry_after=_spread(max(left, 0.5)),
            )
        if self._breakers is None or not self._breakers.rule.enabled:
            return None
        breakers, target = self._breakers, claimed.target_arn
        try:
            read = self._reads.get(target, lambda: BreakerRead(breakers.read(target), now))
        except RedisError:
            return None  # no breaker to ask: the send decides, as without one
        seen = admit(breakers.rule, read.breaker, now=now, caller="")[0]
        if not seen.allowed:
            raise _breaker_held(seen)
        return read

    def age_now(self, claimed: LedgerItem, now: float) -> float:
        """The moment the item's age budget is judged at: `now`, less the time its target
        spent paused since the budget began."""
        started = age_start(claimed)
        if self._pauses is None or started is None:
            return now
        book = self._pause_book(now)
        return now - book.paused_seconds(claimed.target_arn, start=started.timestamp(), now=now)

    @contextmanager
    def sending(self, claimed: LedgerItem, *, read: BreakerRead | None = None) -> Iterator[None]:
        """Around the one send: take the half-open breaker's probe (or wait), and tell the
        breaker what the send said of the target.

        `read`: the breaker as `check` read it for this attempt, or a newer clean read
        of this process. Read closed within the last `BREAKER_REUSE_SECONDS`, it admits
        the send without a second read (a closed breaker admits every send; one that
        opened meanwhile lets a send that began before it go); read clean, a success has
        nothing to clear and writes nothing. A delivery is then one HGETALL at most, and
        none while another delivery's clean read stands for it.
        """
        if self._breakers is None or not self._breakers.rule.enabled:
            yield
            return
        target, caller = claimed.target_arn, claimed.claim_token or claimed.event_id
        now = self._clock.now()
        read = self._reads.kept(target) or read
        closed = read is not None and read.closed_at(now)
        try:
            admission = (
                Admission(True) if closed else self._breakers.admit(target, now=now, caller=caller)
            )
        except RedisError as exc:
            log.warning(f"the target breaker could not be read ({exc}); sending without it")
            admission = Admission(True)
        if not admission.allowed or admission.probe:
            self._reads.forget(target)  # it holds: no older clean read stands for it here
        if not admission.allowed:
            raise _breaker_held(admission)
        clean = closed and read is not None and read.clean
        try:
            yield
        except UNWELL as exc:
            self._tell(target, lambda b: b.failed(target, now=self._clock.now()))
            if admission.probe:
                # The probe found the target still down: that is the breaker's news, not
                # the item's failure; it waits with the others, its attempt returned.
                cooldown = self._breakers.rule.cooldown
                raise TargetHeld(
                    BREAKER_OPEN, code=TARGET_BREAKER_OPEN, retry_after=_spread(cooldown)
                ) from exc
            raise
        except ANSWERED:
            if not clean:
                self._tell(target, lambda b: b.succeeded(target))
            raise
        except BaseException:
            if admission.probe:
                self._tell(target, lambda b: b.released(target, caller=caller))
            raise
        if not clean:
            self._tell(target, lambda b: b.succeeded(target))

    def postponed(self, ledger: LedgerStore, claimed: LedgerItem, held: TargetHeld) -> TargetHeld:
        """Hand the item back unattempted, its wait in its history; answers the `Wait`."""
        delay = held.retry_after or 1.0
        ledger.postpone(
            claimed, until=self._clock.now() + delay, reason=held.reason, code=held.code
        )
        log.info(
            f"replay waits, no attempt spent, looking again in {delay:.0f} s: {held.reason}",
            extra={
                "event_id": claimed.event_id,
                "target_arn": claimed.target_arn,
                "conversation_id": claimed.conversation_id,
                "outcome": "waiting",
            },
        )
        return held

    def _pause_book(self, now: float) -> PauseBook:
        assert self._pauses is not None
        with self._lock:
            kept = self._book
        if kept is not None and 0 <= now - kept[0] < BOOK_REUSE_SECONDS:
            return kept[1]
        try:
            book = self._pauses.book()
        except RedisError:
            book = self._pauses.stored()  # the ledger is the truth: a pause outlives Redis
        with self._lock:
            self._book = (now, book)
        return book

    def _tell(self, target: str, change: Callable[[FleetBreakers], None]) -> None:
        """Change the target's breaker; this process's read of it no longer stands (dropped
        once the change is made, so that no read from before it is kept)."""
        assert self._breakers is not None
        try:
            change(self._breakers)
        except RedisError as exc:
            log.warning(f"the target breaker could not be told of a send ({exc})")
        finally:
            self._reads.forget(target)


def target_holds(
    settings: Settings,
    client: redis.Redis,
    dynamodb: Any,
    *,
    metrics: MetricsObserver = NO_METRICS,
) -> TargetHolds:
    """The gate a worker runs with: the fleet's breakers (REPLAY_BREAKER_*) and the
    pauses, kept in the ledger table and copied in Redis (REPLAY_PAUSE_*)."""
    rule = rule_of(settings)
    store = LedgerPauses(dynamodb, settings.ledger_table, ttl_days=settings.ledger_ttl_days)
    return TargetHolds(
        breakers=FleetBreakers(client, rule, metrics=metrics),
        pauses=Pauses(
            store, client, cache_seconds=settings.replay_pause_cache_seconds, metrics=metrics
        ),
        pause_recheck_seconds=settings.replay_pause_recheck_seconds,
    )


def _breaker_held(admission: Admission) -> TargetHeld:
    return TargetHeld(
        BREAKER_OPEN, code=TARGET_BREAKER_OPEN, retry_after=_spread(admission.retry_after)
    )


def _spread(seconds: float) -> float:
    """A countdown with a little jitter, so a held target's items do not all come back in
    the same instant."""
    return seconds + random.uniform(0.0, min(2.0, 0.1 * seconds))


#: The gate of a replayer built without one: nothing is ever held.
NO_HOLDS = TargetHolds()
