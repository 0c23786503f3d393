"""`dlq-replay export`: the items a filter chooses, as CSV or JSON lines (`dlq.export`)."""

from __future__ import annotations

import sys
from typing import Any

import click

from cli._common import friendly_errors, ledger_of, settings
from cli.choosing import chosen, item_filters
from dlq.export import FORMATS
from dlq.export import export as export_items
from dlq.ledger import Status
from dlq.redrive import select

_EVERY = frozenset(Status)


@click.command()
@item_filters(_EVERY, default="every status")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="csv",
    show_default=True,
    help="CSV with a header, or one JSON object per line.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE",
    help="Write to FILE instead of stdout.",
)
@friendly_errors
def export(fmt: str, output: str | None, **filters: Any) -> None:
    """Write the chosen items, one row each, read from the ledger page by page.

    Columns: event_id, conversation_id, rule_arn, target_arn, status, last_error_code,
    attempts, received_at, updated_at, operator_actions (`<at> <action> by <who>`, `; `
    between them; a list of {at, action, by} in JSON lines). No body or error text.
    """
    config = settings()
    wanted = chosen(_EVERY, **filters)
    items = select(ledger_of(config), wanted, allowed=_EVERY, forgotten=True)
    if output is None:
        count = export_items(items, sys.stdout, format=fmt)
    else:
        with open(output, "w", encoding="utf-8", newline="") as out:
            count = export_items(items, out, format=fmt)
    click.echo(f"exported {count} items", err=True)
