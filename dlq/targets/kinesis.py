"""Kinesis targets: the event as one record."""

from __future__ import annotations

from typing import Any

from dlq.targets.delivery import Replay
from dlq.targets.kind import TargetKind, with_client


def put_kinesis(client: Any, replay: Replay) -> str:
    """Put the body as one record, keyed by conversation so a conversation stays in order."""
    response = client.put_record(
        StreamARN=replay.delivered_to, Data=replay.payload, PartitionKey=replay.group_id
    )
    return f"{response['ShardId']}/{response['SequenceNumber']}"


KIND = TargetKind(
    name="kinesis",
    label="Kinesis streams",
    arn_service="kinesis",
    resource_prefix="stream/",
    send=with_client("kinesis", put_kinesis),
)
