"""`doctor`'s view of the trust boundary: what it allows, and which peeked DLQ messages
it would reject, with why (the ingest's checks, then the rule's pattern as the workers
match it: `events:DescribeRule`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dlq.awserrors import explain_aws
from dlq.boundary import PATTERN_MISMATCH, Refusal, TrustBoundary
from dlq.doctor.check import Check
from dlq.errors import ConfigurationError
from dlq.events import DlqMessage, InvalidMessage, parse_dlq_message
from dlq.rulearn import RuleRef
from dlq.settings import Settings
from dlq.targets.pattern import PatternUnsupported
from dlq.targets.rules import RulePattern

EventsIn = Callable[[str], Any]

_WIDEN = (
    'widen the boundary if it is a Genesys event you mean to replay (README, "The trust '
    'boundary": REPLAY_ALLOWED_BUSES or REPLAY_ALLOWED_RULES on the ingest and the '
    "workers); if not, find who wrote it: only EventBridge should sqs:SendMessage on the DLQ"
)


def check_boundary(
    settings: Settings, messages: list[DlqMessage], events_in: EventsIn
) -> list[Check]:
    """The boundary in one line, and one warning per peeked message it would reject."""
    try:
        boundary = TrustBoundary.from_settings(settings)
    except ConfigurationError as exc:
        fix = "set GENESYS_ORG_ID on the ingest (poller or Lambda) and the replay workers"
        return [Check("trust boundary", False, str(exc), fix)]
    checks = [Check("trust boundary", True, f"replays only events of {boundary.describe()}")]
    patterns: dict[str, RulePattern | str | None] = {}
    refused = 0
    for message in messages:
        refusal = _refusal(boundary, settings, message, events_in, patterns)
        if refusal is not None:
            refused += 1
            checks.append(
                Check(
                    f"dlq message {message.message_id}",
                    True,
                    f"would be rejected ({refusal.code}): {refusal.reason}",
                    _WIDEN,
                )
            )
    if messages and not refused:
        checks.append(
            Check("dlq messages", True, f"all {len(messages)} peeked are inside the boundary")
        )
    for rule_arn, described in sorted(patterns.items()):
        if isinstance(described, str):  # what DescribeRule answered instead of the rule
            checks.append(
                Check(
                    f"pattern of {rule_arn}",
                    False,
                    f"events:DescribeRule failed: {described}; the workers read each rule's "
                    "pattern before a redelivery",
                    f"allow events:DescribeRule on {rule_arn} in the workers' IAM policy",
                )
            )
    return checks


def _refusal(
    boundary: TrustBoundary,
    settings: Settings,
    message: DlqMessage,
    events_in: EventsIn,
    patterns: dict[str, RulePattern | str | None],
) -> Refusal | None:
    try:
        parsed = parse_dlq_message(message, org_id=settings.genesys_org_id or None)
    except InvalidMessage as exc:
        return Refusal(exc.code or "Invalid", exc.reason)
    rule_arn = message.error.rule_arn or ""
    refusal = boundary.refusal(rule_arn, parsed.event.source)
    if refusal is not None:
        return refusal
    if rule_arn not in patterns:
        patterns[rule_arn] = _describe(rule_arn, events_in)
    described = patterns[rule_arn]
    if not isinstance(described, RulePattern):
        return None  # the rule is gone, or unreadable: the rules' checks say so
    if described.text is None:
        return Refusal(PATTERN_MISMATCH, f"rule {rule_arn} has no event pattern")
    try:
        matched = described.parsed.matches(json.loads(message.body))
    except PatternUnsupported:
        return None
    if matched:
        return None
    return Refusal(
        PATTERN_MISMATCH,
        f"the event does not match the event pattern of rule {rule_arn}: {described.text}",
    )


def _describe(rule_arn: str, events_in: EventsIn) -> RulePattern | str | None:
    """The rule's pattern; None when the rule is gone; the reason when it cannot be read."""
    rule = RuleRef.parse(rule_arn)
    if rule is None:
        return None
    try:
        answer = events_in(rule.region).describe_rule(Name=rule.name, EventBusName=rule.bus)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        return explain_aws(exc).cause
    except BotoCoreError as exc:
        return str(exc)
    return RulePattern(answer.get("EventPattern") or None)
