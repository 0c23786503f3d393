"""What an attempt records: a delivery's receipt, a failure's code, what metrics hear."""

from __future__ import annotations

from datetime import datetime

from dlq.clock import parse_iso
from dlq.ledger import LedgerItem, Receipt
from dlq.observe import Outcome
from dlq.redact import scrub
from dlq.targets.delivery import Delivery


def observed(item: LedgerItem) -> Outcome:
    """What metrics are told of a recorded outcome (never the item itself)."""
    return Outcome(
        status=item.status.value,
        target_arn=item.target_arn,
        failure_code=item.last_error_code,
        dlq_error_code=item.dlq.error_code,
        received_at=parse_iso(item.received_at),
        recorded_at=parse_iso(item.updated_at),
    )


def receipt_of(delivery: Delivery) -> Receipt:
    return Receipt(
        delivered_to=delivery.delivered_to,
        answer=delivery.detail,
        route=delivery.route,
        transformed=delivery.transformed,
        digest=delivery.digest,
    )


def code_of(exc: BaseException) -> str:
    """A short, fixed error code for what failed (never a message: agents can read the
    participant attributes it ends up in)."""
    code = getattr(exc, "code", None)
    text = code if isinstance(code, str) and code else type(exc).__name__
    return "".join(c for c in text if c.isalnum() or c in "._-")[:64] or "Error"


def text_of(exc: BaseException) -> str:
    """What the ledger and the log say of a failure: its message, scrubbed of every secret
    the process knows and of anything shaped like a credential (a target's answer may
    have echoed one into it)."""
    return scrub(str(exc))


def correlation_of(exc: BaseException) -> str | None:
    """Genesys's `inin-correlation-id` of a Genesys error, for support to trace it."""
    return getattr(exc, "correlation_id", None)


def age_start(item: LedgerItem) -> datetime | None:
    """Where the age budget starts: the event's own time, or its latest redrive."""
    starts = [t for t in (parse_iso(item.event_time), parse_iso(item.redriven_at)) if t]
    return max(starts, default=None)
