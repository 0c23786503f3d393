"""The tracking task: a conversation's replay state onto its Genesys participant."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from redis.exceptions import RedisError

from dlq.errors import ConfigurationError
from dlq.genesys.errors import GenesysRetryable, RateLimitWait
from dlq.tracking import TrackingOutcome
from tasks.application import app
from tasks.base import BoundedTask
from tasks.names import TRACK_TASK
from tasks.runtime import runtime


@app.task(
    bind=True,
    base=BoundedTask,
    name=TRACK_TASK,
    # A refused login (ConfigurationError) may be fixed by an operator: keep trying.
    autoretry_for=(GenesysRetryable, ConfigurationError, ClientError, BotoCoreError, RedisError),
    dont_autoretry_for=(RateLimitWait,),
)  # countdowns and the bound on retries: `dlq.retry.TRACKING_POLICY` (see BoundedTask)
def track(self: BoundedTask, conversation_id: str) -> str:
    """Summarise one conversation's replays in one PATCH; never redelivers anything."""
    current = runtime()
    try:
        outcome = current.tracker.track(conversation_id)
    except RateLimitWait as wait:
        return self.wait(wait.retry_after)
    if outcome is TrackingOutcome.DEFERRED:
        minimum = current.news.debounce_seconds
        return self.wait(current.tracker.deferral(conversation_id, minimum=minimum))
    return outcome.value  # PARKED too: the conversation's next news runs it
