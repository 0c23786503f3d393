"""Redelivery of an event to the target that missed it, chosen by the TARGET_ARN.

`Redeliverer.redeliver` sends the DLQ message body, unchanged, to the target's kind
(one module per kind: `awslambda`, `sqs`, `sns`, `stepfunctions`, `kinesis`, `firehose`,
`eventbus`, `http`, collected in `registry`), and raises a `TargetError` that says
whether to retry (`RetryLater`) or give up (`GiveUp`).
"""

from dlq.targets.arn import Arn
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
from dlq.targets.kind import TargetKind
from dlq.targets.redeliverer import ClientFactory, Redeliverer
from dlq.targets.registry import KINDS, kind_named, kind_of, target_kind
from dlq.targets.stepfunctions import execution_name

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
    "TargetKind",
    "TargetMissing",
    "TargetRejected",
    "TargetRetryable",
    "TargetThrottled",
    "TargetUnavailable",
    "UnsupportedTarget",
    "classify",
    "execution_name",
    "kind_named",
    "kind_of",
    "target_kind",
]
