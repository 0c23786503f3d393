"""The optional parking queue: where exhausted events go for a person to look at."""

from __future__ import annotations

from typing import Any

from dlq.ledger import LedgerItem


class ParkingQueue:
    """Sends an exhausted event, unchanged, to an SQS queue with its DLQ and replay context."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def park(self, item: LedgerItem, reason: str) -> None:
        context = {
            "RULE_ARN": item.dlq.rule_arn,
            "TARGET_ARN": item.target_arn,
            "ERROR_CODE": item.dlq.error_code,
            "EXHAUSTED_RETRY_CONDITION": item.dlq.exhausted_retry_condition,
            "DLQ_REPLAY_LAST_ERROR": reason[:1000],
            "DLQ_REPLAY_ATTEMPTS": str(item.attempts),
        }
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=item.body,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in context.items()
                if value
            },
        )
