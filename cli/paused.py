"""`dlq-replay paused`: the targets paused now, who paused them, why and until when."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click
import redis

from cli._common import friendly_errors, settings
from cli.output import Output
from cli.pause import pause_row, pauses_for
from dlq.aws import aws_client
from dlq.clock import SYSTEM_CLOCK
from dlq.holds.fleet import FleetBreakers
from dlq.holds.report import rule_of, targets_held
from dlq.ledger.pauses import LedgerPauses
from dlq.settings import Settings

COLUMNS = ("target_arn", "since", "until", "operator", "reason")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def paused(as_json: bool) -> None:
    """List the paused targets (from the ledger: the truth, whatever Redis holds)."""
    rows = [pause_row(p) for p in pauses_for(settings()).listed(now=SYSTEM_CLOCK.now())]
    out = Output(as_json=as_json)
    if as_json:
        out.json(rows)
        return
    if not rows:
        out.line("no target is paused")
        return
    out.table("paused targets", COLUMNS, [[row[c] for c in COLUMNS] for row in rows])


def held_report(
    config: Settings, client: redis.Redis, report: Mapping[str, Any], *, now: float
) -> list[dict[str, Any]]:
    """`status`'s "targets held": paused targets (the ledger's truth) and open breakers
    (the fleet's Redis), with their items waiting as the report counted them."""
    store = LedgerPauses(aws_client("dynamodb", config), config.ledger_table)
    breakers = FleetBreakers(client, rule_of(config))
    waiting = report.get("waiting_on_targets")
    held = targets_held(breakers, store.read(), now=now, waiting=waiting)
    return [hold.as_dict() for hold in held]


def show_held(out: Output, held: Sequence[Mapping[str, Any]]) -> None:
    """The "targets held" table of `status` (nothing when no target is held)."""
    if not held:
        return
    out.table(
        "targets held: their items wait, no attempt spent (`resume`, or the breaker's probe)",
        ["target", "hold", "since", "until", "items waiting", "why"],
        [
            (h["target_arn"], h["hold"], h["since"], h["until"] or "resume",
             h["items_waiting"], h["detail"])
            for h in held
        ],
    )  # fmt: skip
