"""Redelivery to AWS targets: one function per kind, each given a boto3 client for its region.

Each function returns the detail for the receipt and lets boto3 errors through; the
`Redeliverer` classifies them (`errors.from_client_error`).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from dlq.targets.arn import Arn
from dlq.targets.delivery import Replay
from dlq.targets.errors import TargetFailed, TargetRejected, classify

#: How much of a failed function's error payload goes into the error message.
FUNCTION_ERROR_EXCERPT = 500

_EXECUTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


def invoke_lambda(client: Any, replay: Replay) -> str:
    """Invoke the function synchronously; a `FunctionError` is the target failing again."""
    response = client.invoke(
        FunctionName=replay.delivered_to,
        InvocationType="RequestResponse",
        Payload=replay.payload,
    )
    # Read the stream either way, so the connection goes back to the pool.
    payload = response["Payload"].read()
    if response.get("FunctionError"):
        excerpt = payload[:FUNCTION_ERROR_EXCERPT].decode("utf-8", errors="replace")
        raise TargetFailed(
            f"{replay.delivered_to} failed ({response['FunctionError']}): {excerpt}; "
            "the function still fails on this event, retrying later",
            target_arn=replay.delivered_to,
            code="FunctionError",
        )
    return f"StatusCode {response['StatusCode']}, version {response.get('ExecutedVersion', '?')}"


class QueueUrls:
    """Queue URLs by queue ARN, looked up once: a queue's URL never changes."""

    def __init__(self) -> None:
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, client: Any, queue_arn: str) -> str:
        with self._lock:
            url = self._urls.get(queue_arn)
        if url is None:
            arn = Arn.parse(queue_arn)
            assert arn is not None  # routing accepted it as an SQS ARN
            response = client.get_queue_url(QueueName=arn.name, QueueOwnerAWSAccountId=arn.account)
            url = str(response["QueueUrl"])
            with self._lock:
                self._urls[queue_arn] = url
        return url

    def forget(self, queue_arn: str) -> None:
        """Drop a URL that stopped working, so a recreated queue is found again."""
        with self._lock:
            self._urls.pop(queue_arn, None)


def send_sqs(client: Any, queue_url: str, replay: Replay) -> str:
    """Send the body as the message; a FIFO queue also gets group and deduplication ids."""
    extra: dict[str, str] = {}
    if queue_url.endswith(".fifo"):
        extra = {"MessageGroupId": replay.group_id, "MessageDeduplicationId": replay.dedup_id}
    response = client.send_message(QueueUrl=queue_url, MessageBody=replay.body, **extra)
    return str(response["MessageId"])


def publish_sns(client: Any, replay: Replay) -> str:
    """Publish the body as the message; a FIFO topic also gets group and deduplication ids."""
    extra: dict[str, str] = {}
    if replay.delivered_to.endswith(".fifo"):
        extra = {"MessageGroupId": replay.group_id, "MessageDeduplicationId": replay.dedup_id}
    response = client.publish(TopicArn=replay.delivered_to, Message=replay.body, **extra)
    return str(response["MessageId"])


def execution_name(event_id: str) -> str:
    """The execution's name: the event id, so a second start of the same event is refused.

    Step Functions allows 80 characters of [A-Za-z0-9-_]; an id outside that keeps its
    readable part and gains a digest, so two ids never share a name.
    """
    if _EXECUTION_NAME.fullmatch(event_id):
        return event_id
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", event_id)[:63]
    return f"{readable}-{digest}"


def start_execution(client: Any, replay: Replay) -> str:
    """Start one execution per event; one already started means the event was delivered."""
    name = execution_name(replay.event_id)
    try:
        response = client.start_execution(
            stateMachineArn=replay.delivered_to, name=name, input=replay.body
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        arn = Arn.parse(replay.delivered_to)
        assert arn is not None  # routing accepted it as a state machine ARN
        return (
            f"arn:{arn.partition}:states:{arn.region}:{arn.account}:execution:"
            f"{arn.name}:{name} (already started)"
        )
    return str(response["executionArn"])


def put_kinesis(client: Any, replay: Replay) -> str:
    """Put the body as one record, keyed by conversation so a conversation stays in order."""
    response = client.put_record(
        StreamARN=replay.delivered_to, Data=replay.payload, PartitionKey=replay.group_id
    )
    return f"{response['ShardId']}/{response['SequenceNumber']}"


def put_firehose(client: Any, replay: Replay) -> str:
    """Put the body as one record, newline-terminated so the delivered objects stay JSON lines."""
    arn = Arn.parse(replay.delivered_to)
    assert arn is not None  # routing accepted it as a delivery stream ARN
    response = client.put_record(
        DeliveryStreamName=arn.name, Record={"Data": replay.payload + b"\n"}
    )
    return str(response["RecordId"])


def put_bus_event(client: Any, replay: Replay, *, source: str) -> str:
    """Put the event again on an event bus, under `source`.

    This fans out to EVERY rule on that bus whose pattern matches, not only the rule
    whose target failed, and the event gets a new id; point a dedicated bus (or a rule
    on `source`) at the target when that matters. PutEvents refuses `aws.` sources,
    hence REPLAY_EVENT_BUS_SOURCE instead of the original `source`.
    """
    event = _bus_event(replay)
    entry: dict[str, Any] = {
        "EventBusName": replay.delivered_to,
        "Source": source,
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"], ensure_ascii=False),
        "Resources": [str(r) for r in event.get("resources") or []],
    }
    when = _event_time(event.get("time"))
    if when is not None:
        entry["Time"] = when
    response = client.put_events(Entries=[entry])
    result = response["Entries"][0]
    if response.get("FailedEntryCount"):
        raise classify(
            replay.delivered_to, str(result.get("ErrorCode")), str(result.get("ErrorMessage"))
        )
    return str(result["EventId"])


def _bus_event(replay: Replay) -> dict[str, Any]:
    try:
        event = json.loads(replay.body)
    except ValueError:
        event = None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("detail-type"), str)
        or not isinstance(event.get("detail"), dict)
    ):
        raise TargetRejected(
            f"event {replay.event_id} is not an EventBridge event with a detail-type and a "
            f"detail object, so it cannot be put on {replay.delivered_to}",
            target_arn=replay.delivered_to,
            code="InvalidEvent",
        )
    return event


def _event_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
