"""`dlq-replay status`: counts by status, DLQ error code and target; the oldest pending."""

from __future__ import annotations

from collections import Counter
from typing import Any

import click

from cli._common import friendly_errors, ledger_of, settings
from cli.output import Output
from dlq.ledger import PENDING_STATUSES, LedgerItem


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def status(as_json: bool) -> None:
    """Counts by status, DLQ error code and target; the oldest pending item."""
    items = list(ledger_of(settings()).scan())
    report = status_report(items)
    out = Output(as_json=as_json)
    if as_json:
        out.json(report)
        return
    out.table("by status", ["status", "items"], sorted(report["by_status"].items()))
    out.table("by DLQ error code", ["error code", "items"], sorted(report["by_error_code"].items()))
    out.table("by target", ["target", "items"], sorted(report["by_target"].items()))
    out.line(f"duplicates suppressed at ingest: {report['duplicates']}")
    oldest = report["oldest_pending"]
    if oldest:
        out.line(
            f"oldest pending: {oldest['event_id']} ({oldest['status']}, received "
            f"{oldest['received_at']}, {oldest['attempts']} attempts, last error: "
            f"{oldest['last_error'] or '-'})"
        )
    else:
        out.line("nothing pending")


def status_report(items: list[LedgerItem]) -> dict[str, Any]:
    """The `status` report as data (also what the demo's summary is checked against)."""
    pending = [i for i in items if i.status in PENDING_STATUSES]
    oldest = min(pending, key=lambda i: i.received_at, default=None)
    return {
        "total": len(items),
        "by_status": dict(Counter(i.status.value for i in items)),
        "by_error_code": dict(Counter(i.dlq.error_code or "-" for i in items)),
        "by_target": dict(Counter(i.target_arn for i in items)),
        "duplicates": sum(i.duplicates for i in items),
        "oldest_pending": None
        if oldest is None
        else {
            "event_id": oldest.event_id,
            "status": oldest.status.value,
            "received_at": oldest.received_at,
            "attempts": oldest.attempts,
            "last_error": oldest.last_error,
        },
    }
