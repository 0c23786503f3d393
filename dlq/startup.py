"""Whether a process can do its work at all, checked once as it starts.

A worker, beat or the poller that starts without AWS credentials, without its ledger
table or without Redis would otherwise come up looking healthy and then fail every task
(or every tick) with a traceback, retried for good. Checked at start instead, the cause
is one line naming the fix, and the process ends (a fleet restarts it with backoff).
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from redis.exceptions import RedisError

from dlq.aws import aws_client
from dlq.awserrors import explain_aws
from dlq.doctor.explain import explain_redis
from dlq.errors import ConfigurationError, DlqReplayError
from dlq.redisclient import redis_client
from dlq.secrets.redis_auth import RedisCredentials
from dlq.settings import Settings

#: How long the start may wait for Redis: a broker that does not answer in this time
#: will not serve a worker either.
REDIS_PROBE_SECONDS = 5.0


@dataclass(frozen=True)
class Unready:
    """Why a process cannot work: one line naming cause and fix.

    `configuration`: an operator must change something (exit status 2, as the CLI's);
    otherwise an outage that may pass (1).
    """

    text: str
    configuration: bool

    @property
    def status(self) -> int:
        return 2 if self.configuration else 1


def check_ready(
    config: Settings, *, ledger: bool, redis_auth: RedisCredentials | None = None
) -> Unready | None:
    """None when the process can work; else why not, the first failure found.

    Checks AWS credentials (resolved locally: environment, files, the task role's
    endpoint), the ledger table when `ledger` (DescribeTable, which the workers' and the
    poller's policy grants; beat's does not, and beat never reads the ledger), and Redis
    (PING, with the password REDIS_PASSWORD_SECRET_ARN names).
    """
    try:
        if boto3.Session().get_credentials() is None:
            raise NoCredentialsError()
        if ledger:
            aws_client("dynamodb", config).describe_table(TableName=config.ledger_table)
        if redis_auth is not None:
            redis_auth.read()
        client = redis_client(
            config,
            redis_auth,
            socket_connect_timeout=REDIS_PROBE_SECONDS,
            socket_timeout=REDIS_PROBE_SECONDS,
        )
        try:
            client.ping()
        finally:
            client.close()
    except (BotoCoreError, ClientError) as exc:
        explanation = explain_aws(exc)
        return Unready(explanation.text, explanation.configuration)
    except RedisError as exc:
        explanation = explain_redis(exc, config.redis_url)
        return Unready(explanation.text, explanation.configuration)
    except ConfigurationError as exc:
        return Unready(str(exc), configuration=True)
    except DlqReplayError as exc:
        return Unready(str(exc), configuration=False)
    return None
