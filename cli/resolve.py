"""`dlq-replay resolve`: end items without redelivering them (`dlq.resolve`)."""

from __future__ import annotations

from collections.abc import Iterator

import click
from rich.progress import Progress

from cli._common import FAILED, friendly_errors, ledger_of, redis_of, settings
from cli.audit import OPERATOR, record_access
from cli.choosing import chosen, item_filters
from cli.output import Output
from dlq.codes import shown_code
from dlq.ledger import RESOLVABLE_STATUSES, LedgerItem, LedgerStore, Status
from dlq.redrive import RedriveFilter, select
from dlq.resolve import Skipped, refusal
from dlq.resolve import resolve as resolve_items
from dlq.tracking import TrackingNews

_DEFAULT = "failed and exhausted; with EVENT_ID, every status it may be resolved from"


@click.command()
@click.argument("event_id", required=False)
@item_filters(RESOLVABLE_STATUSES, default=_DEFAULT)
@click.option(
    "--reason",
    required=True,
    metavar="TEXT",
    help="Why nothing is to be sent (kept in each item's history; not customer data).",
)
@click.option("--dry-run", is_flag=True, help="List what would be resolved; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@OPERATOR
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def resolve(
    event_id: str | None,
    reason: str,
    dry_run: bool,
    yes: bool,
    operator: str | None,
    as_json: bool,
    **filters: object,
) -> None:
    """End items as `resolved` without redelivering them: nothing is sent.

    One event (EVENT_ID: its items for every target, narrowed by the filters), or the
    items the filters choose, as `redrive` chooses them. A resolved item is final: no
    worker takes it again and `redrive` does not take it back. An item an attempt holds
    under a live lease, or that changed since it was listed, is left, with the reason
    (exit 1).
    """
    if not reason.strip():
        raise click.BadParameter("say why nothing is to be sent", param_hint="--reason")
    config = settings()
    ledger = ledger_of(config)
    defaults = RESOLVABLE_STATUSES if event_id else frozenset({Status.FAILED, Status.EXHAUSTED})
    wanted = chosen(defaults, **filters)  # type: ignore[arg-type]
    items, refused = _choose(ledger, wanted, event_id)
    out = Output(as_json=as_json)
    if dry_run or not items:
        _report(out, items, refused, dry_run=dry_run)
        if refused and not dry_run:
            raise SystemExit(FAILED)
        return
    if not yes:
        out.table("to resolve (nothing is sent)", _COLUMNS, [_row(i) for i in items])
        click.confirm(f"Resolve {len(items)} items without redelivering them?", abort=True)
    who = record_access(
        config,
        "resolve",
        event_ids=[i.event_id for i in items],
        conversation_ids=[i.conversation_id or "" for i in items],
        operator=operator,
    )
    from tasks.application import app
    from tasks.producer import TrackingScheduler

    news = TrackingNews(
        redis_of(config),
        TrackingScheduler(app),
        debounce_seconds=config.replay_tracking_debounce_seconds,
    )
    with Progress(disable=not out.rich, transient=True) as progress:
        bar = progress.add_task("resolving", total=len(items))
        result = resolve_items(
            ledger,
            items,
            reason=reason,
            operator=who,
            news=news,
            each=lambda _: progress.advance(bar),
        )
    skipped = [*refused, *result.skipped]
    if as_json:
        out.json(
            {"resolved": result.resolved, "operator": who, "skipped": [_skip(s) for s in skipped]}
        )
    else:
        out.line(f"resolved: {result.resolved} (by {who}), skipped: {len(skipped)}")
        _skipped(out, skipped)
    if skipped:
        raise SystemExit(FAILED)


def _choose(
    ledger: LedgerStore, wanted: RedriveFilter, event_id: str | None
) -> tuple[list[LedgerItem], list[Skipped]]:
    """The items to resolve, and those of EVENT_ID that cannot be (with the reason)."""
    if not event_id:
        return list(select(ledger, wanted, allowed=RESOLVABLE_STATUSES, forgotten=True)), []
    items: list[LedgerItem] = []
    refused: list[Skipped] = []
    now = ledger.clock.now()
    for item in _named(ledger, event_id):
        if not wanted.matches(item):
            continue
        why = refusal(item, now=now)
        if why is not None:
            refused.append(Skipped(item, why))
        elif item.status in wanted.statuses:
            items.append(item)
    return items, refused


def _named(ledger: LedgerStore, event_id: str) -> Iterator[LedgerItem]:
    yield from ledger.items_for_event(event_id) or ledger.items_for_event(f"rejected:{event_id}")


def _report(out: Output, items: list[LedgerItem], refused: list[Skipped], *, dry_run: bool) -> None:
    if out.as_json:
        out.json(
            {
                "dry_run": dry_run,
                "items": [dict(zip(_FIELDS, _row(i), strict=True)) for i in items],
                "skipped": [_skip(s) for s in refused],
            }
        )
        return
    out.table(f"{len(items)} items would be resolved (nothing is sent)", _COLUMNS,
              [_row(i) for i in items])  # fmt: skip
    _skipped(out, refused)


def _skipped(out: Output, skipped: list[Skipped]) -> None:
    if skipped:
        out.table(
            "left as they are",
            ["event", "target", "status", "why"],
            [(s.item.event_id, s.item.target_arn, s.item.status.value, s.reason) for s in skipped],
        )


def _skip(skipped: Skipped) -> dict[str, str]:
    item = skipped.item
    return {
        "event_id": item.event_id,
        "target_arn": item.target_arn,
        "status": item.status.value,
        "reason": skipped.reason,
    }


_FIELDS = ("event_id", "target_arn", "status", "error_code", "conversation_id", "updated_at")
_COLUMNS = ["event", "target", "status", "error code", "conversation", "updated"]


def _row(item: LedgerItem) -> tuple[str, str, str, str, str, str]:
    return (
        item.event_id,
        item.target_arn,
        item.status.value,
        shown_code(item.last_error_code),
        item.conversation_id or "-",
        item.updated_at,
    )
