"""boto3 clients, built one way: region from the settings, endpoint from `AWS_ENDPOINT_URL`."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from dlq.settings import Settings

#: Long polls wait 20 s; a synchronous Lambda invoke runs as long as the function, and
#: must still end inside the task's soft time limit (90 s).
READ_TIMEOUTS = {"sqs": 25, "lambda": 80}


def aws_client(service: str, settings: Settings, *, pool_size: int = 32) -> Any:
    """A boto3 client with bounded timeouts and standard retries.

    boto3 itself honours `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`), which is
    how the demo and the tests point every client at moto.
    """
    config = Config(
        region_name=settings.aws_region,
        connect_timeout=3,
        read_timeout=READ_TIMEOUTS.get(service, 10),
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=pool_size,
    )
    return boto3.session.Session().client(service, config=config)
