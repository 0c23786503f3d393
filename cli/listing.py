"""`dlq-replay status --status S`: the items of one status, newest first.

Read through the ledger's by-status index, backwards, stopped at `--limit`: one page of
one partition, never a scan. Rejected items are listed with their reason and SQS message
id (their only name: a message that could not be parsed may have no event id).
"""

from __future__ import annotations

from typing import Any

from cli.output import Output
from dlq.codes import shown_code
from dlq.ledger import LedgerItem, LedgerStore, Status


def list_status(out: Output, ledger: LedgerStore, status: Status, *, limit: int) -> None:
    """Print (or emit as JSON) the newest `limit` items of `status`."""
    items = list(ledger.by_status(status, newest_first=True, limit=limit))
    if out.as_json:
        out.json([_record(item) for item in items])
        return
    title = f"{len(items)} newest {status.value} items" + (
        f" (the first {limit}: --limit shows more)" if len(items) == limit else ""
    )
    if status is Status.REJECTED:
        out.table(
            title,
            ["sqs message id", "received", "reason"],
            [(i.sqs_message_id or i.event_id, i.received_at, i.reject_reason or "-")
             for i in items],
        )  # fmt: skip
        if items:
            out.line("`dlq-replay inspect <sqs message id>` shows one with its raw body")
        return
    out.table(
        title,
        ["event", "target", "updated", "attempts", "error code", "last error"],
        [(i.event_id, i.target_arn, i.updated_at, i.attempts, shown_code(i.last_error_code),
          i.last_error or "-") for i in items],
    )  # fmt: skip
    if items:
        out.line("`dlq-replay inspect <event>` shows one with its history")


def _record(item: LedgerItem) -> dict[str, Any]:
    return {
        "event_id": item.event_id,
        "sqs_message_id": item.sqs_message_id,
        "target_arn": item.target_arn,
        "status": item.status.value,
        "received_at": item.received_at,
        "updated_at": item.updated_at,
        "attempts": item.attempts,
        "reject_reason": item.reject_reason,
        "last_error": item.last_error,
        "last_error_code": item.last_error_code,
        "dlq_error_code": item.dlq.error_code,
    }
