"""The retry policy: how long to wait before the next attempt, and when to stop."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from dlq.settings import MAX_COUNTDOWN_SECONDS, Settings


def cap_countdown(seconds: float) -> float:
    """Clamp a wait to what the broker can hold safely."""
    return max(0.0, min(float(seconds), MAX_COUNTDOWN_SECONDS))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts and age budget of a replay, and the backoff between attempts."""

    max_attempts: int = 8
    backoff_base: int = 2
    backoff_max: int = 600
    max_age_seconds: int = 7 * 24 * 3600

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.replay_max_attempts,
            backoff_base=settings.replay_backoff_base,
            backoff_max=settings.replay_backoff_max,
            max_age_seconds=settings.replay_max_event_age_seconds,
        )

    def backoff(self, retries: int) -> float:
        """Celery's own formula with full jitter: uniform in [0, min(max, base * 2**n)]."""
        ceiling = min(self.backoff_max, self.backoff_base * 2**retries)
        return cap_countdown(random.uniform(0, ceiling))

    def attempts_left(self, attempts: int) -> bool:
        return attempts < self.max_attempts

    def too_old(self, event_time: datetime | None, now: datetime) -> bool:
        if event_time is None:
            return False
        return (now - event_time).total_seconds() > self.max_age_seconds
