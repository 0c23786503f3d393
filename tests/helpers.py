"""What the tests share: paths, the simulator's credentials, and builders of DLQ messages,
events and AWS resources on the moto server."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from dlq.aws import aws_client
from dlq.events import DlqMessage, parse_dlq_message
from dlq.ledger import Ledger, create_table
from dlq.settings import Settings

T = TypeVar("T")

#: The repository's root, wherever a test file sits below tests/.
REPO = Path(__file__).resolve().parent.parent
#: Copies of ../shared/fixtures, so a clone tests on its own.
FIXTURES = REPO / "tests" / "fixtures"

#: Credentials the simulator fixtures accept.
SIM_CLIENT_ID = "0d3c7a2e-sim-client"
SIM_CLIENT_SECRET = "sim-secret-7f3a9c1e5b"

ORG = "5b1f0d2e-8c34-4e1a-9a77-2d6c0e9f4b13"
RULE = f"arn:aws:events:us-east-1:111122223333:rule/aws.partner/genesys.com/cloud/{ORG}/crm/r"


def genesys_event(
    *,
    event_id: str | None = None,
    conversation_id: str | None = None,
    topic: str = "customer.end",
    org: str = ORG,
) -> dict[str, Any]:
    """A Genesys conversation event as EventBridge delivers it."""
    conversation_id = conversation_id or str(uuid.uuid4())
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": f"v2.detail.events.conversation.{{id}}.{topic}",
        "source": f"aws.partner/genesys.com/cloud/{org}/crm-sync",
        "account": "111122223333",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "topicName": f"v2.detail.events.conversation.{conversation_id}.{topic}",
            "version": "2",
            "eventBody": {"conversationId": conversation_id, "participantId": str(uuid.uuid4())},
            "metadata": {"CorrelationId": str(uuid.uuid4())},
            "timestamp": "2026-11-20T14:09:47.020Z",
        },
    }


def dlq_attributes(
    target_arn: str, *, error_code: str = "THROTTLING", rule_arn: str = RULE
) -> dict[str, Any]:
    """The six EventBridge attributes in `send_message` form."""
    values = {
        "RULE_ARN": rule_arn,
        "TARGET_ARN": target_arn,
        "ERROR_CODE": error_code,
        "ERROR_MESSAGE": "Rate Exceeded.",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
        "RETRY_ATTEMPTS": "185",
    }
    return {name: {"StringValue": v, "DataType": "String"} for name, v in values.items()}


def received_message(
    body: str, target_arn: str, message_id: str | None = None, *, rule_arn: str = RULE
) -> DlqMessage:
    """A DLQ message as `receive_message` would return it."""
    return DlqMessage.from_receive_message(
        {
            "MessageId": message_id or str(uuid.uuid4()),
            "ReceiptHandle": "handle",
            "Body": body,
            "MessageAttributes": dlq_attributes(target_arn, rule_arn=rule_arn),
            "Attributes": {"ApproximateReceiveCount": "1"},
        }
    )


def lambda_record(body: str, target_arn: str | None, message_id: str | None = None) -> dict:
    """An SQS-triggered Lambda record carrying a DLQ message."""
    attributes = dlq_attributes(target_arn) if target_arn else {}
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {
            name: {"stringValue": v["StringValue"], "dataType": "String"}
            for name, v in attributes.items()
        },
        "eventSource": "aws:sqs",
    }


def parsed(body: dict[str, Any], target_arn: str, *, rule_arn: str = RULE):
    text = json.dumps(body)
    message = received_message(text, target_arn, rule_arn=rule_arn)
    return parse_dlq_message(message), message


def new_ledger(settings: Settings, table: str) -> Ledger:
    client = aws_client("dynamodb", settings)
    create_table(client, table)
    return Ledger(client, table)


def new_queue(settings: Settings, name: str) -> str:
    sqs = aws_client("sqs", settings)
    return str(sqs.create_queue(QueueName=name)["QueueUrl"])


def eventually(check: Callable[[], T], *, timeout: float, what: str, every: float = 0.05) -> T:
    """Wait until `check()` answers something true, and answer it; fail naming `what`
    after `timeout` seconds (a bound only)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = check()
        if answer:
            return answer
        time.sleep(every)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")
