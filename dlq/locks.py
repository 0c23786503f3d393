"""Short Redis locks that keep two workers off one conversation (speed, not correctness).

Correctness comes from the ledger's conditional claim; the lock only stops a
conversation's events from racing each other and its lookup from stampeding.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from redis.exceptions import LockError
from redis.lock import Lock

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


@dataclass(frozen=True, slots=True)
class Held:
    """What `ConversationLocks.hold` got: the lock or not, and whether it had to wait."""

    acquired: bool
    #: The lock was busy at first: whoever held it may have done this caller's work.
    waited: bool = False
    _lock: Lock | None = field(default=None, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.acquired

    def renew(self) -> bool:
        """Give the lock its whole TTL again, from now (before each attempt of a pass);
        False when it is no longer ours (it lapsed and another worker took it)."""
        if self._lock is None:
            return self.acquired
        try:
            return bool(self._lock.reacquire())
        except LockError:
            return False


class ConversationLocks:
    """redis-py locks with a TTL above the task's hard time limit."""

    #: How often a waiting caller asks again (one SET NX each).
    POLL_SECONDS = 0.05

    def __init__(self, client: redis.Redis, *, ttl_seconds: float) -> None:
        self._client = client
        self._ttl = ttl_seconds

    @contextmanager
    def hold(self, name: str, *, wait: float = 0.0) -> Iterator[Held]:
        """Take the lock, waiting up to `wait` seconds for it; yields what was got.

        A short wait is cheaper than a task sent back to the broker: a conversation's
        pass usually ends within a few target round trips.
        """
        lock = self._client.lock(
            f"dlq:lock:{name}", timeout=self._ttl, sleep=self.POLL_SECONDS, blocking=False
        )
        held = Held(bool(lock.acquire(blocking=False)), _lock=lock)
        if not held and wait > 0:
            got = bool(lock.acquire(blocking=True, blocking_timeout=wait))
            held = Held(got, waited=True, _lock=lock)
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
