"""SNS targets: the event as the message; FIFO topics get group and deduplication ids."""

from __future__ import annotations

from typing import Any

from dlq.targets.delivery import Replay
from dlq.targets.kind import TargetKind, with_client


def publish_sns(client: Any, replay: Replay) -> str:
    """Publish the body as the message; a FIFO topic also gets group and deduplication ids."""
    extra: dict[str, str] = {}
    if replay.delivered_to.endswith(".fifo"):
        extra = {"MessageGroupId": replay.group_id, "MessageDeduplicationId": replay.dedup_id}
    response = client.publish(TopicArn=replay.delivered_to, Message=replay.content, **extra)
    return str(response["MessageId"])


KIND = TargetKind(
    name="sns",
    label="SNS topics",
    arn_service="sns",
    send=with_client("sns", publish_sns),
)
