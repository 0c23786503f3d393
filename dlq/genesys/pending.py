"""The fleet's "to verify" list: conversations waiting for the next batch verification.

A Redis sorted set of conversation ids scored by when they were added (the oldest go
first), written by the ingest and read by the prefetch task and by replays deciding
whether to wait for it. One flag debounces the scheduling: a burst of ingests schedules
one prefetch run, and a run clears the flag when it starts, so an id added while it runs
schedules the next.

The set is bounded without any run: every add drops the ids marked more than
`hold_seconds` ago, keeps at most `max_size` ids (an id beyond it is not kept), and sets
the key to expire `hold_seconds` after the latest add. A fleet that consumes no `verify`
queue, or whose runs keep failing, so holds a bounded set. Nothing is lost by it: an
id that is not in the set is looked up on its own by its replay (the single GET), as it
is once it has waited longer than `GENESYS_VERIFY_WAIT_SECONDS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import redis

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.fleet import lua
from dlq.redisclient import decoded

PENDING_KEY = "dlq:verify:pending"
SCHEDULED_KEY = "dlq:verify:scheduled"
#: The flag outlives the run it announces by this much; if that run is lost (a Redis
#: flush, a worker killed before it acked), the next ingest after it schedules another.
SCHEDULE_GRACE_SECONDS = 60.0
#: How long an id stays in the set at most. A replay waits for a batch only
#: GENESYS_VERIFY_WAIT_SECONDS after the mark; a batch run later than this only warms the
#: cache for a replay that has most likely looked its conversation up on its own by then.
HOLD_SECONDS = 3600.0
#: How many ids wait at most (about 100 bytes each in Redis): a backlog beyond a
#: thousand full batches is verified one conversation at a time, by the single GET.
MAX_SIZE = 100_000

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
        hold_seconds: float = HOLD_SECONDS,
        max_size: int = MAX_SIZE,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """`gather_seconds`: how long after the first of a burst its run starts, so one
        call carries the burst. `hold_seconds` and `max_size` bound the set (keep the hold
        above GENESYS_VERIFY_WAIT_SECONDS: replays wait for a batch that long)."""
        if hold_seconds <= 0 or max_size < 1:
            raise ValueError("hold_seconds > 0 and max_size >= 1")
        self._redis = client
        self._schedule = schedule
        self.gather_seconds = gather_seconds
        self.hold_seconds = hold_seconds
        self.max_size = max_size
        self._clock = clock
        self._mark = client.register_script(lua("mark_pending", package=__package__))

    def add(self, conversation_id: str) -> bool:
        """Mark a conversation to verify (keeping the time it was first marked), and make
        sure a prefetch run is scheduled; whether it waits in the set (False: the set is
        full, and its replay looks it up on its own).

        A full set keeps what it holds: those are the next batches' (and the next
        replays') conversations, and an id not kept costs its replay no wait at all."""
        now = self._clock.now()
        kept = self._mark(
            keys=[PENDING_KEY],
            args=[
                conversation_id,
                repr(now),
                repr(now - self.hold_seconds),
                self.max_size,
                max(1, math.ceil(self.hold_seconds)),
            ],
        )
        self.ensure_scheduled(self.gather_seconds)
        return bool(kept)

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

    def kick(self, after: float = 0.0) -> None:
        """Schedule a run `after` seconds out, whatever is scheduled already (a drain of
        the DLQ ended: the partial batch it held goes at once; a run that finds another
        in progress comes back after it, see `dlq.verify`)."""
        self._redis.set(SCHEDULED_KEY, "1", ex=int(after + SCHEDULE_GRACE_SECONDS))
        self._schedule(after)

    def starting(self) -> None:
        """A run starts: from now on an id added schedules the next run. Ids held longer
        than `hold_seconds` go now, not to the run."""
        oldest_kept = self._clock.now() - self.hold_seconds
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(SCHEDULED_KEY)
        pipe.zremrangebyscore(PENDING_KEY, "-inf", f"({oldest_kept!r}")
        pipe.execute()

    def added_at(self, conversation_id: str) -> float | None:
        """When the conversation was marked, or None when it is not waiting."""
        score = self._redis.zscore(PENDING_KEY, conversation_id)
        return None if score is None else float(score)

    def oldest(self, count: int) -> list[tuple[str, float]]:
        """Up to `count` waiting ids, oldest first, with the time each was marked."""
        rows: list[tuple[bytes | str, float]] = self._redis.zrange(  # type: ignore[assignment]
            PENDING_KEY, 0, count - 1, withscores=True
        )
        return [(decoded(member), float(score)) for member, score in rows]

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
