"""The fleet's "to verify" list: conversations waiting for the next batch verification.

A Redis sorted set of conversation ids scored by when they were added (the oldest go
first), written by the ingest and read by the prefetch task and by replays deciding
whether to wait for it. One flag debounces the scheduling: a burst of ingests schedules
one prefetch run, and a run clears the flag when it starts, so an id added while it runs
schedules the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import redis

from dlq.clock import SYSTEM_CLOCK, Clock

PENDING_KEY = "dlq:verify:pending"
SCHEDULED_KEY = "dlq:verify:scheduled"
#: The flag outlives the run it announces by this much; if that run is lost (a Redis
#: flush, a worker killed before it acked), the next ingest after it schedules another.
SCHEDULE_GRACE_SECONDS = 60.0

#: Schedules one prefetch run `delay` seconds from now (the Celery producer implements it).
Schedule = Callable[[float], None]


class PendingVerifications:
    """Conversation ids waiting for a batch verification, oldest first, shared by the fleet."""

    def __init__(
        self,
        client: redis.Redis,
        schedule: Schedule,
        *,
        gather_seconds: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """`gather_seconds`: how long after the first of a burst its run starts, so one
        call carries the burst."""
        self._redis = client
        self._schedule = schedule
        self.gather_seconds = gather_seconds
        self._clock = clock

    def add(self, conversation_id: str) -> None:
        """Mark a conversation to verify (keeping the time it was first marked), and make
        sure a prefetch run is scheduled."""
        self._redis.zadd(PENDING_KEY, {conversation_id: self._clock.now()}, nx=True)
        self.ensure_scheduled(self.gather_seconds)

    def ensure_scheduled(self, delay: float) -> bool:
        """Schedule a run `delay` seconds out unless one is already scheduled; whether
        this call scheduled it."""
        ttl = max(1, int(delay + SCHEDULE_GRACE_SECONDS))
        if not self._redis.set(SCHEDULED_KEY, "1", nx=True, ex=ttl):
            return False
        try:
            self._schedule(delay)
        except Exception:
            # Nothing is scheduled after all: let the next caller try.
            self._redis.delete(SCHEDULED_KEY)
            raise
        return True

    def starting(self) -> None:
        """A run starts: from now on an id added schedules the next run."""
        self._redis.delete(SCHEDULED_KEY)

    def added_at(self, conversation_id: str) -> float | None:
        """When the conversation was marked, or None when it is not waiting."""
        score = self._redis.zscore(PENDING_KEY, conversation_id)
        return None if score is None else float(score)

    def oldest(self, count: int) -> list[tuple[str, float]]:
        """Up to `count` waiting ids, oldest first, with the time each was marked."""
        rows: list[tuple[bytes | str, float]] = self._redis.zrange(  # type: ignore[assignment]
            PENDING_KEY, 0, count - 1, withscores=True
        )
        return [(_text(member), float(score)) for member, score in rows]

    def newest(self) -> float | None:
        """When the most recent id was marked, or None when none waits."""
        rows: list[tuple[bytes | str, float]] = self._redis.zrange(  # type: ignore[assignment]
            PENDING_KEY, -1, -1, withscores=True
        )
        return float(rows[0][1]) if rows else None

    def remove(self, conversation_ids: Iterable[str]) -> None:
        ids = list(conversation_ids)
        if ids:
            self._redis.zrem(PENDING_KEY, *ids)

    def count(self) -> int:
        return int(self._redis.zcard(PENDING_KEY))


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member
