"""The retry policy: how long to wait before the next attempt, and when to stop.

One value decides for every task: the domain asks it whether an item has attempts or
age left, and the Celery adapter (`tasks.base.BoundedTask.retry`) asks it for each
countdown, at run time, so a changed setting takes effect without a re-import.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from dlq.settings import MAX_COUNTDOWN_SECONDS, Settings


def cap_countdown(seconds: float) -> float:
    """Clamp a wait to what the broker can hold safely (below its visibility timeout)."""
    return max(0.0, min(float(seconds), MAX_COUNTDOWN_SECONDS))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts and age budget of a task, and the backoff between its retries.

    `max_age_seconds` of None means no age budget (tracking). `task_retries` bounds the
    Celery task's own retries, which also count waits on infrastructure (Redis, the
    ledger) that spend no attempt; when it runs out the task ends failed and the ledger,
    which still says pending, has the reconciler enqueue the item again later.
    """

    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_max: float = 600.0
    jitter: bool = True
    max_age_seconds: int | None = 7 * 24 * 3600
    task_retries: int = 50

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The replay policy: REPLAY_MAX_ATTEMPTS, REPLAY_BACKOFF_*, REPLAY_MAX_EVENT_AGE_*."""
        return cls(
            max_attempts=settings.replay_max_attempts,
            backoff_base=settings.replay_backoff_base,
            backoff_max=settings.replay_backoff_max,
            jitter=settings.replay_backoff_jitter,
            max_age_seconds=settings.replay_max_event_age_seconds,
            task_retries=settings.replay_max_attempts + 40,
        )

    def countdown(
        self, retries: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds before retry number `retries + 1`.

        Celery's formula, `min(max, base * 2**retries)`, with full jitter (uniform in
        [0, that]); stretched to a server's `Retry-After` when that is longer; capped
        below the broker's visibility timeout.
        """
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** min(retries, 64))
        delay = (rng or random).uniform(0, ceiling) if self.jitter else ceiling
        return cap_countdown(max(delay, retry_after or 0.0))

    def attempts_left(self, attempts: int) -> bool:
        return attempts < self.max_attempts

    def too_old(self, started: datetime | None, now: datetime) -> bool:
        """Whether the age budget, counted from `started`, is spent."""
        if started is None or self.max_age_seconds is None:
            return False
        return (now - started).total_seconds() > self.max_age_seconds


#: Tracking's policy: Genesys bookkeeping may wait out a long outage, but not forever.
TRACKING_POLICY = RetryPolicy(
    max_attempts=12, backoff_base=5, backoff_max=900, max_age_seconds=None, task_retries=12
)
