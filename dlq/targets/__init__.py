"""Redelivery of an event to the target that missed it: what EventBridge would have sent.

`Redeliverer.redeliver` routes by the message's rule (`rules`: the rule's own targets,
never just the TARGET_ARN's word), renders the target's input transformation
(`transform`), and sends once through the target's kind, raising a `TargetError` that
says whether to retry (`RetryLater`) or give up (`GiveUp`). The package knows no
Genesys, ledger or metrics code.

| module | holds |
| --- | --- |
| `redeliverer` | `Redeliverer`: routing (`plan`), one send, `forget` after a redrive |
| `rules` | `RuleBook`: a rule's targets, shared by the fleet in Redis |
| `transform`, `jsonpath`, `eventjson` | input transformation as EventBridge does it |
| `kind`, `registry` | `TargetKind` and `SendContext`; the kinds by ARN |
| `awslambda`, `sqs`, `sns`, `stepfunctions`, ... | one module per kind (`registry` lists them) |
| `connections` | API destinations' connections, cached, and their OAuth tokens |
| `connection_auth` | what a connection's secret says a call carries, in every layout |
| `facts` | `TargetFacts`: what AWS said about target ARNs, one TTL, `forget(arn)` |
| `options` | `SendOptions`: the settings a send reads |
| `errors`, `arn`, `delivery` | the error tree, ARNs, what a send answers |
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
