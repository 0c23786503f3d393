"""Kinesis targets: the event as one record."""

from __future__ import annotations

from typing import Any

from dlq.targets.delivery import Replay
from dlq.targets.kind import TargetKind, with_client


def put_kinesis(client: Any, replay: Replay) -> str:
    """Put the payload as one record, keyed as the rule target says (default: the event id)."""
    response = client.put_record(
        StreamARN=replay.delivered_to, Data=replay.data, PartitionKey=replay.partition_key
    )
    return f"{response['ShardId']}/{response['SequenceNumber']}"


KIND = TargetKind(
    name="kinesis",
    label="Kinesis streams",
    arn_service="kinesis",
    resource_prefix="stream/",
    send=with_client("kinesis", put_kinesis),
)
