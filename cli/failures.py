"""What a failure that ends a command says and its exit status, as `friendly_errors` prints it.

For a command whose output is a log (`dlq-replay poll`): it logs the same line at ERROR
and exits with the same status instead of printing `error: ...` beside its JSON lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from dlq.awserrors import Explanation, explain_aws
from dlq.doctor.explain import explain_redis, redact_url
from dlq.errors import ConfigurationError, DlqReplayError

#: Exit statuses: 1 for a failure that may pass, 2 for one an operator must fix.
FAILED, MISCONFIGURED = 1, 2


@dataclass(frozen=True)
class Failure:
    """One line naming cause and fix, and the exit status it ends the command with."""

    text: str
    status: int

    @classmethod
    def explained(cls, explanation: Explanation) -> Failure:
        return cls(explanation.text, MISCONFIGURED if explanation.configuration else FAILED)


def failure_of(exc: BaseException, redis_url: str) -> Failure | None:
    """The line and status of a failure an operator can act on; None for a bug (whose
    traceback is the useful report). `redis_url` is named without its password."""
    if isinstance(exc, ConfigurationError):
        return Failure(str(exc), MISCONFIGURED)
    if isinstance(exc, DlqReplayError):
        return Failure(str(exc), FAILED)
    if isinstance(exc, BotoCoreError | ClientError):
        return Failure.explained(explain_aws(exc))
    if isinstance(exc, RedisError):
        return Failure.explained(explain_redis(exc, redis_url))
    if isinstance(exc, OperationalError):
        # Celery's publish wraps the Redis error.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, RedisError):
            return Failure.explained(explain_redis(cause, redis_url))
        return Failure(
            f"the broker at {redact_url(redis_url)} (REDIS_URL) failed: {exc}: check Redis",
            FAILED,
        )
    return None
