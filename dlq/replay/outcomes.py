"""What a replay answers: its outcome, or that it must come back later, and its options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from dlq.boundary import TrustBoundary
from dlq.errors import DlqReplayError, RetryLater
from dlq.ledger import IMMINENT_SECONDS, Status


class ReplayOutcome(StrEnum):
    REPLAYED = "replayed"
    FAILED = "failed"
    EXHAUSTED = "exhausted"
    #: Outside the trust boundary (`dlq.boundary`): nothing was sent.
    REJECTED = "rejected"
    SUPPRESSED = "duplicate_suppressed"
    SKIPPED = "skipped"
    #: Left to its line's pass, parked while the DLQ drains (`dlq.arrivals`): the pass
    #: replays the item, and no task of its own comes back for it.
    PARKED = "parked"


#: The outcome a final status of an attempt stands for.
OUTCOME_OF = {
    Status.REPLAYED: ReplayOutcome.REPLAYED,
    Status.FAILED: ReplayOutcome.FAILED,
    Status.EXHAUSTED: ReplayOutcome.EXHAUSTED,
    Status.REJECTED: ReplayOutcome.REJECTED,
}


class Wait(RetryLater):
    """Come back after `retry_after` seconds; no attempt was spent (lock busy, budget)."""


class RecordLost(DlqReplayError):
    """The target received the event but the ledger could not record it before the lease
    ran out: the item is left leased (never released for an immediate retry); once the
    lease lapses the reconciler brings it back, and the target may receive it again."""


class SendInterrupted(RetryLater):
    """The send stopped midway for a reason of the worker's own (a time limit, a bug): the
    target may have received the event. A failed attempt, retried after the backoff."""


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
    #: A pass waits for events of its conversation still on their way from the DLQ
    #: (`dlq.arrivals`, whose notes last the longest hold) while the last arrived this
    #: recently.
    ingest_quiet_seconds: float = 2.0
    #: The longest one attempt can take (`Settings.attempt_bound_seconds`): an ordered
    #: pass starts no attempt that could not end before `time_limit_seconds`.
    attempt_bound_seconds: float = 150.0
    #: The task's soft time limit (`REPLAY_TASK_SOFT_TIME_LIMIT`), which bounds a pass.
    time_limit_seconds: float = 160.0
    #: The longest one ledger call can take with its retries: a delivered attempt's
    #: outcome is written again and again while its lease has at least this much left.
    ledger_call_seconds: float = 30.0
    #: Which rules' events may be sent at all (`dlq.boundary`), checked again before each
    #: attempt (the ingest checked it first); None: not checked here.
    boundary: TrustBoundary | None = None
