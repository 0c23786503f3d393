"""boto3 clients, built one way: region from the settings, endpoint from `AWS_ENDPOINT_URL`."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

from dlq.settings import Settings

#: Long polls wait 20 s; every other call of ours is short.
READ_TIMEOUTS = {"sqs": 25}
CONNECT_TIMEOUT = 3

#: Service models, parsed once per process. A session's loader caches the JSON models it
#: reads, and a new session starts with an empty one: without this, every client re-reads
#: its service's model (~0.13 s of CPU a client, 6x the rest of building it). Sessions
#: stay one per client (their credentials and settings are resolved afresh); only this
#: read-only cache is shared (botocore `Session.register_component('data_loader')`).
_MODELS = botocore.loaders.create_loader()


def _session() -> boto3.session.Session:
    """A new boto3 session that reads service models from the process's cache."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _MODELS)
    return boto3.session.Session(botocore_session=core)


def aws_client(
    service: str,
    settings: Settings,
    *,
    pool_size: int = 32,
    validate: bool = True,
    region: str | None = None,
) -> Any:
    """A boto3 client with bounded timeouts and standard retries, for our own resources.

    Its calls are reads, conditional writes and deletes, which are safe to repeat.
    boto3 itself honours `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`), which is
    how the demo and the tests point every client at moto. `validate=False` skips
    botocore's client-side parameter validation (botocore `Config`,
    `parameter_validation`): for the worker's and the ingest's ledger, whose requests only
    `dlq.ledger.store` builds and the contract tests check with validation on. `region`
    overrides AWS_REGION (a secret named by an ARN of another region).
    """
    ledger = service == "dynamodb"
    config = Config(
        parameter_validation=validate,
        region_name=region or settings.aws_region,
        connect_timeout=settings.ledger_connect_timeout if ledger else CONNECT_TIMEOUT,
        read_timeout=settings.ledger_read_timeout if ledger else READ_TIMEOUTS.get(service, 10),
        # The ledger's tries are part of an attempt's bound (`Settings.attempt_bound_seconds`):
        # `total_max_attempts` counts the first request, `max_attempts` only the retries
        # after it (botocore docs, "Retries").
        retries=(
            {"mode": "standard", "total_max_attempts": settings.ledger_tries}
            if ledger
            else {"mode": "standard", "max_attempts": 3}
        ),
        max_pool_connections=pool_size,
    )
    return _session().client(service, config=config)


def target_client(service: str, settings: Settings, *, pool_size: int = 32) -> Any:
    """A boto3 client that sends an event to a target: exactly one try, bounded in time.

    botocore's standard mode resends on a read timeout or a closed connection, so one
    `Invoke` or `SendMessage` could reach the target several times in one attempt
    (botocore docs, "Retries": `total_max_attempts` counts the first call). Retries
    belong to the task alone, which the ledger counts. The timeouts are the settings'
    send bounds, which `Settings` keeps inside the claim's lease.
    """
    config = Config(
        region_name=settings.aws_region,
        connect_timeout=settings.replay_send_connect_timeout,
        read_timeout=settings.replay_send_read_timeout,
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=pool_size,
    )
    return _session().client(service, config=config)
