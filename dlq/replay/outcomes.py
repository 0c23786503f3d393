"""What a replay answers: its outcome, or that it must come back later, and its options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from dlq.errors import RetryLater
from dlq.ledger import IMMINENT_SECONDS, Status


class ReplayOutcome(StrEnum):
    REPLAYED = "replayed"
    FAILED = "failed"
    EXHAUSTED = "exhausted"
    SUPPRESSED = "duplicate_suppressed"
    SKIPPED = "skipped"


#: The outcome a final status of an attempt stands for.
OUTCOME_OF = {
    Status.REPLAYED: ReplayOutcome.REPLAYED,
    Status.FAILED: ReplayOutcome.FAILED,
    Status.EXHAUSTED: ReplayOutcome.EXHAUSTED,
}


class Wait(RetryLater):
    """Come back after `retry_after` seconds; no attempt was spent (lock busy, budget)."""


class AttemptFailed(RetryLater):
    """The attempt failed transiently. `schedule(delay)` records the retry in the ledger;
    whoever decides the delay (the Celery retry) must call it before scheduling."""

    def __init__(
        self, message: str, *, retry_after: float | None, schedule: Callable[[float], None]
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.schedule = schedule


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    verify_conversation: bool = True
    redeliver_missing_conversation: bool = False
    lease_seconds: float = 150.0
    #: `REPLAY_ORDER=conversation`: a conversation's events reach a target in time order.
    in_order: bool = True
    order_hold_seconds: float = 300.0
    #: A retry due within this long counts as about to happen (tracking waits for it).
    imminent_seconds: float = IMMINENT_SECONDS
    #: How long a task waits for its conversation's lock before it is sent back to the
    #: queue: a pass usually ends sooner, and a re-sent task costs a broker round trip.
    lock_wait_seconds: float = 1.0
