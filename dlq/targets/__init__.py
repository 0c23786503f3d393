"""Redelivery of an event to the target that missed it, chosen by the TARGET_ARN.

`Redeliverer.redeliver` sends the DLQ message body, unchanged, to a Lambda function, SQS
queue, SNS topic, Step Functions state machine, Kinesis stream, Firehose delivery stream,
EventBridge event bus or a configured HTTP endpoint, and raises a `TargetError` that says
whether to retry (`RetryLater`) or give up (`GiveUp`).
"""

from dlq.targets.arn import KINDS, Arn, target_kind
from dlq.targets.aws import execution_name
from dlq.targets.delivery import Delivery
from dlq.targets.errors import (
    TargetError,
    TargetFailed,
    TargetFatal,
    TargetForbidden,
    TargetMissing,
    TargetRejected,
    TargetRetryable,
    TargetThrottled,
    TargetUnavailable,
    UnsupportedTarget,
    classify,
)
from dlq.targets.redeliverer import ClientFactory, Redeliverer

__all__ = [
    "KINDS",
    "Arn",
    "ClientFactory",
    "Delivery",
    "Redeliverer",
    "TargetError",
    "TargetFailed",
    "TargetFatal",
    "TargetForbidden",
    "TargetMissing",
    "TargetRejected",
    "TargetRetryable",
    "TargetThrottled",
    "TargetUnavailable",
    "UnsupportedTarget",
    "classify",
    "execution_name",
    "target_kind",
]
