"""The redelivery task: a thin adapter from Celery to `dlq.replay.Replayer`."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from redis.exceptions import RedisError

from dlq.events import EventKey
from dlq.replay import AttemptFailed, ReplayOutcome, Wait
from tasks.application import app
from tasks.base import BoundedTask
from tasks.names import REPLAY_TASK
from tasks.runtime import runtime

# The infrastructure errors retry the same way as failed attempts: the ledger item is
# released first (see Replayer), so the retry finds it claimable. The countdown and the
# bound on retries come from the replay `RetryPolicy` (see BoundedTask).
RETRYABLE = (AttemptFailed, ClientError, BotoCoreError, RedisError)

#: Outcomes that end the task FAILURE, so Flower counts the event as a failed task.
NOT_REPLAYED = (ReplayOutcome.FAILED, ReplayOutcome.EXHAUSTED, ReplayOutcome.REJECTED)


class EventNotReplayed(Exception):
    """An event ended `failed`, `exhausted` or `rejected` (the ledger has recorded it): the
    task fails.

    Expected, never retried: it is in the task's `throws` and not in `autoretry_for`, so
    the worker logs it as one line without a traceback, and the task ends FAILURE.
    """

    def __init__(self, event_id: str, target_arn: str, outcome: str) -> None:
        self.event_id, self.target_arn, self.outcome = event_id, target_arn, outcome
        super().__init__(
            f"event {event_id} for {target_arn} ended {outcome}: "
            f"`dlq-replay inspect {event_id}` shows why, `dlq-replay redrive` retries it "
            "once the cause is fixed"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.event_id, self.target_arn, self.outcome))


@app.task(
    bind=True,
    base=BoundedTask,
    name=REPLAY_TASK,
    autoretry_for=RETRYABLE,
    throws=(EventNotReplayed,),
)
def replay(
    self: BoundedTask,
    event_id: str,
    target_arn: str,
    rule_arn: str = "",
    lock: str | None = None,
    generation: str | None = None,
    parked: bool = False,
) -> str:
    """Redeliver one event to one target of one rule, or record why not.

    `rule_arn`, `lock`, `generation` and `parked` have defaults so that tasks queued
    before they travelled still run.
    """
    key = EventKey(event_id, target_arn, rule_arn)
    try:
        outcome = runtime().replayer.replay(
            key, lock=lock, task_id=self.request.id, generation=generation, parked=parked
        )
    except Wait as wait:
        return self.wait(wait.retry_after)
    if outcome in NOT_REPLAYED:
        raise EventNotReplayed(event_id, target_arn, outcome.value)
    return outcome.value
