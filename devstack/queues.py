"""Local queues on the AWS emulator: the demo's DLQ, target queues (never on AWS itself).

On a real account the EventBridge DLQ belongs to whoever set up the rule, and `setup`
only reviews it. Here, with no account at all, the demo and `setup --local` create one
configured the way the review advises: a standard queue, a visibility timeout of six
times the ingest Lambda's default timeout, SSE-SQS, and a policy that lets EventBridge
rules of this region send to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dlq.errors import ConfigurationError

#: 6 x the ingest Lambda's 60 s timeout: what `setup` advises for a real DLQ.
LOCAL_VISIBILITY_TIMEOUT = 360


@dataclass(frozen=True)
class LocalQueue:
    """A queue created (or found) on the emulator."""

    name: str
    url: str
    arn: str


def refuse_real_aws(sqs: Any) -> None:
    """Stop unless the client talks to an emulator (AWS_ENDPOINT_URL), not to AWS."""
    endpoint = str(sqs.meta.endpoint_url)
    host = urlsplit(endpoint).hostname or ""
    if host.endswith(("amazonaws.com", "amazonaws.com.cn")):
        raise ConfigurationError(
            f"--local creates queues on a local emulator only, and the SQS endpoint is "
            f"{endpoint}: set AWS_ENDPOINT_URL to the emulator (moto), or drop --local"
        )


def create_local_queues(sqs: Any, names: tuple[str, ...]) -> dict[str, LocalQueue]:
    """Create these standard queues on the emulator (idempotent); name -> queue."""
    refuse_real_aws(sqs)
    queues: dict[str, LocalQueue] = {}
    for name in names:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queues[name] = LocalQueue(name, url, arn)
    return queues


def configure_as_dlq(sqs: Any, queue: LocalQueue) -> None:
    """Give a local queue the attributes of a well-configured EventBridge DLQ."""
    refuse_real_aws(sqs)
    region, account = queue.arn.split(":")[3:5]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeRulesOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue.arn,
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:events:{region}:*:rule/*"}},
            },
            {
                "Sid": "ThisAccount",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "sqs:*",
                "Resource": queue.arn,
            },
        ],
    }
    sqs.set_queue_attributes(
        QueueUrl=queue.url,
        Attributes={
            "VisibilityTimeout": str(LOCAL_VISIBILITY_TIMEOUT),
            "SqsManagedSseEnabled": "true",
            "Policy": json.dumps(policy),
        },
    )


def create_local_dlq(
    sqs: Any, dlq_url: str, *, extra: tuple[str, ...] = ()
) -> dict[str, LocalQueue]:
    """The DLQ named by `dlq_url` (configured as a DLQ) and `extra` queues, on the emulator."""
    if not dlq_url:
        raise ConfigurationError("DLQ_QUEUE_URL is not set: setup --local needs it")
    name = dlq_url.rstrip("/").rsplit("/", 1)[-1]
    queues = create_local_queues(sqs, (name, *extra))
    configure_as_dlq(sqs, queues[name])
    return queues
