"""The redelivery task: a thin adapter from Celery to `dlq.replay.Replayer`."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from redis.exceptions import RedisError

from dlq.events import EventKey
from dlq.replay import AttemptFailed, Wait
from tasks.application import app
from tasks.base import BoundedTask
from tasks.names import REPLAY_TASK
from tasks.runtime import runtime

# The infrastructure errors retry the same way as failed attempts: the ledger item is
# released first (see Replayer), so the retry finds it claimable. The countdown and the
# bound on retries come from the replay `RetryPolicy` (see BoundedTask).
RETRYABLE = (AttemptFailed, ClientError, BotoCoreError, RedisError)


@app.task(bind=True, base=BoundedTask, name=REPLAY_TASK, autoretry_for=RETRYABLE)
def replay(
    self: BoundedTask,
    event_id: str,
    target_arn: str,
    rule_arn: str = "",
    lock: str | None = None,
) -> str:
    """Redeliver one event to one target of one rule, or record why not.

    `rule_arn` and `lock` have defaults so that tasks queued before they travelled still run.
    """
    key = EventKey(event_id, target_arn, rule_arn)
    try:
        outcome = runtime().replayer.replay(key, lock=lock, task_id=self.request.id)
    except Wait as wait:
        return self.wait(wait.retry_after)
    return outcome.value
