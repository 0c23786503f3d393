"""`dlq-replay forget`: drop what the ledger keeps of a customer, keep the counts (`dlq.forget`)."""

from __future__ import annotations

import click
from rich.progress import Progress

from cli._common import FAILED, friendly_errors, ledger_of, settings
from cli.audit import record_access
from cli.output import Output
from cli.when import WHEN
from dlq.clock import iso
from dlq.forget import ForgetFilter, select
from dlq.forget import forget as forget_items
from dlq.ledger import LedgerItem


@click.command()
@click.option("--conversation-id", metavar="ID", help="The items of this conversation.")
@click.option(
    "--older-than",
    "older_than",
    type=WHEN,
    metavar="WHEN",
    help="The items last updated before WHEN: more than a duration ago (30d, 12h), before a "
    "date (2026-12-01) or an ISO time (2026-12-01T10:00:00Z); UTC unless it gives an offset. "
    "With --conversation-id: only its items this old.",
)
@click.option("--dry-run", is_flag=True, help="List what would be forgotten; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def forget(
    conversation_id: str | None, older_than: float | None, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """Delete stored bodies and error texts; keep status, attempts, codes and times.

    Only items that reached a final status: a pending one still needs its body, and is
    listed instead. Exits 1 when any chosen item was left as it is.
    """
    if not conversation_id and older_than is None:
        raise click.UsageError("name what to forget: --conversation-id ID, --older-than 30d")
    config = settings()
    ledger = ledger_of(config)
    before = iso(older_than) if older_than is not None else None
    chosen = select(ledger, ForgetFilter(conversation_id=conversation_id, updated_before=before))
    out = Output(as_json=as_json)
    if dry_run or not chosen.forgettable:
        _report(out, chosen.forgettable, chosen.pending, dry_run=dry_run)
        if chosen.pending and not dry_run:
            raise SystemExit(FAILED)
        return
    if not yes:
        out.table("to forget", _COLUMNS, [_row(i) for i in chosen.forgettable])
        count = len(chosen.forgettable)
        click.confirm(f"Forget the bodies and texts of {count} items?", abort=True)
    operator = record_access(
        config,
        "forget",
        event_ids=[i.event_id for i in chosen.forgettable],
        conversation_ids=[i.conversation_id or "" for i in chosen.forgettable],
    )
    with Progress(disable=not out.rich, transient=True) as progress:
        bar = progress.add_task("forgetting", total=len(chosen.forgettable))
        result = forget_items(
            ledger,
            chosen.forgettable,
            note=f"forgotten by {operator}",
            each=lambda _: progress.advance(bar),
        )
    left = [*result.skipped, *chosen.pending]
    if as_json:
        out.json(
            {
                "forgotten": result.forgotten,
                "skipped": [_record(i) for i in result.skipped],
                "pending": [_record(i) for i in chosen.pending],
            }
        )
    else:
        out.line(f"forgotten: {result.forgotten}, skipped (changed meanwhile): "
                 f"{len(result.skipped)}, pending (kept): {len(chosen.pending)}")  # fmt: skip
        _left(out, result.skipped, chosen.pending)
    if left:
        raise SystemExit(FAILED)


def _report(
    out: Output, forgettable: list[LedgerItem], pending: list[LedgerItem], *, dry_run: bool
) -> None:
    if out.as_json:
        out.json(
            {
                "dry_run": dry_run,
                "items": [_record(i) for i in forgettable],
                "pending": [_record(i) for i in pending],
            }
        )
        return
    rows = [_row(i) for i in forgettable]
    out.table(f"{len(forgettable)} items would be forgotten", _COLUMNS, rows)
    _left(out, [], pending)


def _left(out: Output, skipped: list[LedgerItem], pending: list[LedgerItem]) -> None:
    if skipped:
        out.table("changed meanwhile (run forget again)", _COLUMNS, [_row(i) for i in skipped])
    if pending:
        out.table(
            "still pending, kept: their replay needs the body (forget them once they end)",
            _COLUMNS,
            [_row(i) for i in pending],
        )


_FIELDS = ("event_id", "target_arn", "status", "conversation_id", "updated_at")
_COLUMNS = ["event", "target", "status", "conversation", "updated"]


def _row(item: LedgerItem) -> tuple[str, str, str, str, str]:
    return (
        item.event_id,
        item.target_arn,
        item.status.value,
        item.conversation_id or "-",
        item.updated_at,
    )


def _record(item: LedgerItem) -> dict[str, str | None]:
    return {name: getattr(item, name) for name in _FIELDS} | {"status": item.status.value}
