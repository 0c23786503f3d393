"""What every `dlq-replay` command shares: one-line errors, the settings, the ledger."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import redis
from botocore.exceptions import BotoCoreError, ClientError
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from cli.output import Output
from dlq.aws import aws_client
from dlq.awserrors import Explanation, explain_aws
from dlq.doctor.explain import explain_redis, redact_url
from dlq.errors import ConfigurationError, DlqReplayError
from dlq.ledger import Ledger
from dlq.metrics.tally import StatusTally
from dlq.redisclient import redis_client
from dlq.secrets.redis_auth import RedisCredentials
from dlq.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])

#: Exit statuses: 1 for a failure that may pass, 2 for one an operator must fix.
FAILED, MISCONFIGURED = 1, 2


def friendly_errors(command: F) -> F:
    """Failures end the command with one line naming cause and fix, never a traceback.

    Exit status 2 when an operator must change something (a setting, credentials, IAM),
    1 otherwise (an outage, throttling: trying again later may work).
    """

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigurationError as exc:
            _stop(str(exc), MISCONFIGURED)
        except DlqReplayError as exc:
            _stop(str(exc), FAILED)
        except (BotoCoreError, ClientError) as exc:
            _explained(explain_aws(exc))
        except RedisError as exc:
            _explained(explain_redis(exc, _redis_url()))
        except OperationalError as exc:
            # Celery's publish wraps the Redis error.
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, RedisError):
                _explained(explain_redis(cause, _redis_url()))
            url = redact_url(_redis_url())
            _stop(f"the broker at {url} (REDIS_URL) failed: {exc}: check Redis", FAILED)

    return run  # type: ignore[return-value]


def _explained(explanation: Explanation) -> NoReturn:
    _stop(explanation.text, MISCONFIGURED if explanation.configuration else FAILED)


def _stop(text: str, status: int) -> NoReturn:
    Output().error(text)
    sys.exit(status)


def _redis_url() -> str:
    try:
        return load_settings().redis_url
    except ConfigurationError:
        return "REDIS_URL"


def settings() -> Settings:
    return load_settings()


def redis_of(config: Settings, **options: Any) -> redis.Redis:
    """A client of REDIS_URL (REDIS_TLS_* applied), with the password
    REDIS_PASSWORD_SECRET_ARN names if set."""
    return redis_client(config, RedisCredentials.from_settings(config), **options)


def ledger_of(config: Settings) -> Ledger:
    """The ledger table the settings name; the status changes it writes (redrive,
    resolve) move the fleet's status counts in Redis (connected on the first move; a
    Redis that refuses is the command's next error to report, not this one's)."""
    return Ledger(
        aws_client("dynamodb", config),
        config.ledger_table,
        ttl_days=config.ledger_ttl_days,
        moves=StatusTally(redis_of(config), config.ledger_table, refused_level=logging.DEBUG),
    )
