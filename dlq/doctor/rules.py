"""`doctor`'s checks of the EventBridge rules the DLQ's messages name.

The DLQ is peeked at (zero visibility timeout, never consumed); each rule it names is
listed with `events:ListTargetsByRule`, as the replay does before a redelivery.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from dlq.aws import aws_client
from dlq.awserrors import ACCESS_DENIED, aws_error, explain_aws
from dlq.doctor.check import Check
from dlq.events import DlqMessage
from dlq.rulearn import RuleRef
from dlq.settings import Settings

#: The peek takes at most this many DLQ messages (one receive).
PEEK_MESSAGES = 10


def peek_messages(sqs: Any, queue_url: str) -> list[DlqMessage]:
    """Up to ten DLQ messages, received without consuming them.

    A zero visibility timeout leaves each message visible (it is never deleted); the
    receive still counts towards a redrive policy's maxReceiveCount.
    """
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=PEEK_MESSAGES,
        VisibilityTimeout=0,
        WaitTimeSeconds=0,
        MessageAttributeNames=["All"],
    )
    return [DlqMessage.from_receive_message(m) for m in response.get("Messages", [])]


def peek_rules(sqs: Any, queue_url: str) -> dict[str, set[str]]:
    """RULE_ARN -> TARGET_ARNs of up to ten DLQ messages, received without consuming them."""
    return rules_of(peek_messages(sqs, queue_url))


def rules_of(messages: list[DlqMessage]) -> dict[str, set[str]]:
    """RULE_ARN -> TARGET_ARNs of `messages`."""
    rules: dict[str, set[str]] = {}
    for message in messages:
        rule, target = message.error.rule_arn, message.error.target_arn
        if rule:
            rules.setdefault(rule, set()).update([target] if target else [])
    return rules


def check_rules(settings: Settings, messages: list[DlqMessage] | None = None) -> list[Check]:
    """events:ListTargetsByRule on each rule the DLQ's messages name (a peek, no consuming;
    `messages`: what an earlier peek received)."""
    if not settings.dlq_queue_url:
        return [Check("eventbridge rules", None, "not checked: DLQ_QUEUE_URL is not set")]
    try:
        if messages is None:
            messages = peek_messages(aws_client("sqs", settings), settings.dlq_queue_url)
    except ClientError as exc:
        explained = explain_aws(exc)
        return [Check("eventbridge rules", None, f"not checked: {explained.cause}", explained.fix)]
    rules = rules_of(messages)
    if not rules:
        return [
            Check("eventbridge rules", None, "not checked: no DLQ message to name a rule (empty)")
        ]
    clients: dict[str, Any] = {}

    def events_in(region: str) -> Any:
        if region not in clients:
            regional = settings.model_copy(update={"aws_region": region or settings.aws_region})
            clients[region] = aws_client("events", regional)
        return clients[region]

    checks = []
    for arn, targets in sorted(rules.items()):
        rule = RuleRef.parse(arn)
        if rule is None:
            checks.append(Check(f"rule {arn}", None, "not checked: not an EventBridge rule ARN"))
            continue
        checks.append(check_rule(events_in(rule.region), rule, targets))
    return checks


def _targets(events: Any, rule: RuleRef) -> Iterator[str]:
    token: str | None = None
    while True:
        page = events.list_targets_by_rule(
            Rule=rule.name, EventBusName=rule.bus, **({"NextToken": token} if token else {})
        )
        yield from (t["Arn"] for t in page.get("Targets", []))
        token = page.get("NextToken")
        if not token:
            return


def check_rule(events: Any, rule: RuleRef, targets: set[str]) -> Check:
    """events:ListTargetsByRule on one rule: allowed, the rule still there, `targets` its own."""
    name = f"rule {rule.name}" + ("" if rule.bus == "default" else f" (bus {rule.bus})")
    try:
        current = set(_targets(events, rule))
    except ClientError as exc:
        error = aws_error(exc)
        if error.code in ACCESS_DENIED or error.http_status == 403:
            return Check(
                name,
                False,
                f"events:ListTargetsByRule on {rule.arn} was denied: replay cannot check "
                "that a message's TARGET_ARN is one of its rule's targets",
                f"allow events:ListTargetsByRule on {rule.arn} (or "
                f"arn:aws:events:{rule.region}:*:rule/*) in the workers' IAM policy",
            )
        if error.code == "ResourceNotFoundException":
            return Check(
                name,
                True,
                f"rule gone: {rule.arn} no longer exists, so its events have no rule target "
                "to check against",
                "redeliver them through REPLAY_TARGET_OVERRIDES, or REPLAY_TRUST_TARGET_ARN"
                "=true if the targets still stand (set on the replay workers, which read them: "
                "restart them), then redrive",
            )
        explained = explain_aws(exc)
        return Check(name, False, explained.cause, explained.fix)
    missing = sorted(targets - current)
    if missing:
        return Check(
            name,
            True,
            f"{len(current)} targets; no longer among them: {', '.join(missing)}",
            "route those through REPLAY_TARGET_OVERRIDES on the replay workers (restart them "
            "with it), or accept that they fail",
        )
    return Check(name, True, f"{len(current)} targets, every TARGET_ARN peeked among them")
