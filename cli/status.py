"""`dlq-replay status`: counts by status, DLQ error code and target; the oldest pending."""

from __future__ import annotations

from collections import Counter
from typing import Any

import click

from cli._common import friendly_errors, ledger_of, settings
from cli.output import Output
from dlq.ledger import PENDING_STATUSES, LedgerItem, Status


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--status",
    "only",
    type=click.Choice([s.value for s in Status]),
    help="List the newest items of this status instead (e.g. rejected: reason, message id).",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="With --status: at most this many items.")  # fmt: skip
@click.option("--watch", is_flag=True, help="A live view: rates, ETA, budget, failing targets.")
@click.option("--interval", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="With --watch: seconds between refreshes.")  # fmt: skip
@click.option("--once", is_flag=True, help="With --watch: print one frame and exit.")
@friendly_errors
def status(
    as_json: bool, only: str | None, limit: int, watch: bool, interval: float, once: bool
) -> None:
    """Counts by status, DLQ error code and target; the oldest pending item."""
    if only or watch or once:
        _other_views(as_json, only, limit, watch or once, interval, once)
        return
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


def _other_views(
    as_json: bool, only: str | None, limit: int, watch: bool, interval: float, once: bool
) -> None:
    """`--status` (a listing) and `--watch` (a live view): modules of their own."""
    config = settings()
    out = Output(as_json=as_json)
    if only:
        from cli.listing import list_status

        list_status(out, ledger_of(config), Status(only), limit=limit)
        return
    from cli.watch import run_watch, watcher_for

    run_watch(watcher_for(config, ledger_of(config)), out, interval=interval, once=once)
