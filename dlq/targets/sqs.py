"""SQS targets: the event as the message body; FIFO queues get group and deduplication ids."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from dlq.targets.arn import Arn
from dlq.targets.delivery import Replay
from dlq.targets.errors import TargetMissing, from_client_error
from dlq.targets.kind import SendContext, TargetKind


def send_sqs(client: Any, queue_url: str, replay: Replay) -> str:
    """Send the payload as the message; a FIFO queue also gets group and deduplication ids."""
    extra: dict[str, str] = {}
    if queue_url.endswith(".fifo"):
        extra = {"MessageGroupId": replay.group_id, "MessageDeduplicationId": replay.dedup_id}
    response = client.send_message(QueueUrl=queue_url, MessageBody=replay.content, **extra)
    return str(response["MessageId"])


def send(context: SendContext, replay: Replay) -> str:
    """Send to the queue the ARN names; a queue found missing is looked up again next time."""
    client = context.client("sqs", replay.delivered_to)
    try:
        url = context.facts.get(replay.delivered_to, "queue-url", lambda: queue_url(client, replay))
        return send_sqs(client, url, replay)
    except ClientError as error:
        if isinstance(from_client_error(replay.delivered_to, error), TargetMissing):
            context.facts.forget(replay.delivered_to)  # recreated, it has a new URL
        raise


def queue_url(client: Any, replay: Replay) -> str:
    """The URL of the queue the ARN names (`GetQueueUrl`; a queue's URL never changes)."""
    arn = Arn.parse(replay.delivered_to)
    assert arn is not None  # routing accepted it as an SQS ARN
    response = client.get_queue_url(QueueName=arn.name, QueueOwnerAWSAccountId=arn.account)
    return str(response["QueueUrl"])


KIND = TargetKind(name="sqs", label="SQS queues", arn_service="sqs", send=send)
