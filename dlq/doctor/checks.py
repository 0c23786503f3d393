"""`dlq-replay doctor`: every dependency checked with the real configuration.

Each check is a plain function returning `Check` values; none changes anything (the
DLQ is peeked at with a zero visibility timeout, never consumed). A check that cannot
run says why instead of raising, so one broken dependency never hides the others.
The checks live by dependency: `broker` (Redis), `ledger`, `genesys`, `rules`, and the
trust boundary's (`boundary`); the DLQ's own review is `queue`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dlq.aws import aws_client
from dlq.awserrors import explain_aws
from dlq.doctor.boundary import check_boundary
from dlq.doctor.broker import check_redis
from dlq.doctor.check import Check
from dlq.doctor.genesys import check_genesys
from dlq.doctor.ledger import check_ledger
from dlq.doctor.queue import Finding, Severity, ingest_lambda_timeout, review_dlq
from dlq.doctor.rules import check_rule, check_rules, peek_messages, peek_rules
from dlq.events import DlqMessage
from dlq.settings import Settings

__all__ = [
    "Check",
    "check_boundary",
    "check_dlq",
    "check_genesys",
    "check_ledger",
    "check_redis",
    "check_rule",
    "check_rules",
    "diagnose",
    "finding_check",
    "peek_rules",
]


def diagnose(
    settings: Settings, *, lambda_timeout: int | None = None, receive_visibility: int = 0
) -> list[Check]:
    """Every check, in the order a reader fixes things: broker, ledger, DLQ, Genesys, the
    trust boundary, rules.

    `lambda_timeout`: the ingest function's timeout as --lambda-timeout gives it (0: no
    Lambda; None: INGEST_FRONT_DOOR decides); `receive_visibility`: the poller's.
    """
    lambda_timeout = ingest_lambda_timeout(settings.ingest_front_door, lambda_timeout)
    peeked = _peek(settings)
    events_in = _events_in(settings)
    return [
        *check_redis(settings),
        *_guarded("ledger table", lambda: check_ledger(aws_client("dynamodb", settings),
                                                       settings.ledger_table)),
        *_guarded("dlq", lambda: check_dlq(aws_client("sqs", settings), settings.dlq_queue_url,
                                           lambda_timeout=lambda_timeout,
                                           receive_visibility=receive_visibility)),
        *check_genesys(settings),
        *_guarded("trust boundary", lambda: check_boundary(settings, peeked or [], events_in)),
        *_guarded("eventbridge rules", lambda: check_rules(settings, peeked)),
    ]  # fmt: skip


def _peek(settings: Settings) -> list[DlqMessage] | None:
    """The DLQ messages the boundary and rules checks judge, peeked once; None when they
    cannot be (the rules check then says why)."""
    if not settings.dlq_queue_url:
        return None
    try:
        return peek_messages(aws_client("sqs", settings), settings.dlq_queue_url)
    except (BotoCoreError, ClientError):
        return None


def _events_in(settings: Settings) -> Callable[[str], Any]:
    """An EventBridge client per region, each built once."""
    clients: dict[str, Any] = {}

    def events_in(region: str) -> Any:
        if region not in clients:
            regional = settings.model_copy(update={"aws_region": region or settings.aws_region})
            clients[region] = aws_client("events", regional)
        return clients[region]

    return events_in


def _guarded(name: str, run: Callable[[], list[Check]]) -> list[Check]:
    # No credentials, no endpoint: one failing line for the group, not a crash.
    try:
        return run()
    except (BotoCoreError, ClientError) as exc:
        explained = explain_aws(exc)
        return [Check(name, False, explained.cause, explained.fix)]


def check_dlq(
    sqs: Any, queue_url: str, *, lambda_timeout: int | None, receive_visibility: int
) -> list[Check]:
    """The DLQ readable, and the review `setup` prints, as checks."""
    findings = review_dlq(
        sqs, queue_url, lambda_timeout=lambda_timeout, receive_visibility=receive_visibility
    )
    return [finding_check(f) for f in findings]


def finding_check(finding: Finding) -> Check:
    """A finding of the DLQ review as a check: a warning passes, with its fix (every
    warning of the review carries one)."""
    if finding.severity is Severity.FAIL:
        return Check(finding.check, False, finding.found, finding.fix)
    return Check(finding.check, True, finding.found, finding.fix)
