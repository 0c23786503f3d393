"""Short Redis locks that keep two workers off one conversation (speed, not correctness).

Correctness comes from the ledger's conditional claim; the lock only stops a
conversation's events from racing each other and its lookup from stampeding.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import inf

import redis
from redis.exceptions import LockError
from redis.lock import Lock

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.events import EventKey

log = logging.getLogger(__name__)


def lock_name(key: EventKey, conversation_id: str | None) -> str:
    """The lock an item's attempts take: its conversation's, else one of its own.

    The producer computes it from what it knows, so that it travels with the task and
    the worker's first ledger request is the claim.
    """
    return conversation_id or f"event:{key.event_id}|{key.target_arn}"


def conversation_of(lock: str) -> str | None:
    """The conversation a `lock_name` locks, or None for an event's own lock."""
    return None if lock.startswith("event:") else lock


@dataclass(slots=True)
class Held:
    """What `ConversationLocks.hold` got: the lock or not, and whether it had to wait."""

    acquired: bool
    #: The lock was busy at first: whoever held it may have done this caller's work.
    waited: bool = False
    _lock: Lock | None = field(default=None, repr=False, compare=False)
    #: Until when the lock is surely ours (its TTL counted from before it was set).
    _until: float = field(default=inf, repr=False, compare=False)
    _clock: Clock = field(default=SYSTEM_CLOCK, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.acquired

    def renew(self) -> bool:
        """Give the lock its whole TTL again once half of it has gone (before each attempt
        of a pass); False when it is no longer ours (it lapsed and another worker took
        it). Until then it costs no Redis call. An attempt that outlasts half the TTL (the
        claim's lease) may see it lapse: the item's lease, not the lock, keeps another
        pass off it then, and this pass stops at its next renewal."""
        if self._lock is None:
            return self.acquired
        now = self._clock.now()
        ttl = self._lock.timeout or 0.0
        if now + ttl / 2 < self._until:
            return True
        try:
            renewed = bool(self._lock.reacquire())
        except LockError:
            return False
        self._until = now + ttl
        return renewed


class ConversationLocks:
    """redis-py locks with the claim's lease as their TTL: a worker killed mid-pass keeps
    its conversations no longer than it keeps their items."""

    #: How often a waiting caller asks again (one SET NX each).
    POLL_SECONDS = 0.05

    def __init__(
        self, client: redis.Redis, *, ttl_seconds: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock

    @contextmanager
    def hold(self, name: str, *, wait: float = 0.0) -> Iterator[Held]:
        """Take the lock, waiting up to `wait` seconds for it; yields what was got.

        A short wait is cheaper than a task sent back to the broker: a conversation's
        pass usually ends within a few target round trips.
        """
        lock = self._client.lock(
            f"dlq:lock:{name}", timeout=self._ttl, sleep=self.POLL_SECONDS, blocking=False
        )
        asked = self._clock.now()
        got, waited = bool(lock.acquire(blocking=False)), False
        if not got and wait > 0:
            asked, waited = self._clock.now(), True
            got = bool(lock.acquire(blocking=True, blocking_timeout=wait))
        # Its TTL counted from before the SET that took it: surely ours until then.
        held = Held(got, waited=waited, _lock=lock, _until=asked + self._ttl, _clock=self._clock)
        try:
            yield held
        finally:
            if held:
                try:
                    lock.release()
                except LockError:
                    # The TTL ran out first: the work is done and recorded in the
                    # ledger, so this must not turn into a retry.
                    log.warning("a conversation lock expired before its release", extra={})
