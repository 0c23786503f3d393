"""`dlq-replay unpark`: take exhausted events back from the parking queue (`dlq.unpark`)."""

from __future__ import annotations

import click

from cli._common import FAILED, friendly_errors, settings
from cli.audit import OPERATOR, record_access
from cli.output import Output
from dlq.aws import aws_client
from dlq.errors import ConfigurationError
from dlq.unpark import ParkingReader, UnparkFilter
from dlq.unpark import unpark as unpark_messages


@click.command()
@click.option("--target-arn", help="Only messages parked for this target.")
@click.option("--conversation-id", help="Only messages of this conversation.")
@click.option("--event-id", help="Only this event's messages.")
@click.option("--limit", type=click.IntRange(min=1), help="Take back at most this many events.")
@click.option("--dry-run", is_flag=True, help="List what would be taken back; change nothing.")
@OPERATOR
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def unpark(
    target_arn: str | None,
    conversation_id: str | None,
    event_id: str | None,
    limit: int | None,
    dry_run: bool,
    operator: str | None,
    as_json: bool,
) -> None:
    """Re-admit parked events: each gets a fresh attempt budget and is replayed again.

    Reads REPLAY_PARKING_QUEUE_URL once through. A chosen message's ledger item goes back
    to `received` (its history names the parking queue and you), its replay is enqueued,
    and only then is the message deleted. Messages not chosen stay in the queue. Exits 1
    when a chosen message was left (its item is not exhausted, say).
    """
    config = settings()
    if not config.replay_parking_queue_url:
        raise ConfigurationError("REPLAY_PARKING_QUEUE_URL is not set: there is no parking queue")
    from ingest.frontdoor import FrontDoor

    door = FrontDoor.from_settings(config)
    who = record_access(
        config,
        "unpark" + (" --dry-run" if dry_run else ""),
        event_ids=[event_id] if event_id else [],
        conversation_ids=[conversation_id] if conversation_id else [],
        operator=operator,
    )
    result = unpark_messages(
        ParkingReader(aws_client("sqs", config), config.replay_parking_queue_url),
        ledger=door.ledger,
        enqueuer=door.enqueuer,
        admit=door.handle,
        wanted=UnparkFilter(
            target_arn=target_arn, conversation_id=conversation_id, event_id=event_id
        ),
        operator=who,
        limit=limit,
        dry_run=dry_run,
    )
    out = Output(as_json=as_json)
    if as_json:
        out.json(
            {
                "dry_run": dry_run,
                "operator": who,
                "taken": result.taken,
                "left": result.left,
                "not_chosen": result.unmatched,
            }
        )
    else:
        verb = "would take back" if dry_run else f"taken back (by {who})"
        out.table(f"{len(result.taken)} events {verb}", ["event", "what"],
                  sorted(result.taken.items()))  # fmt: skip
        if result.left:
            out.table("left in the parking queue", ["event", "why"], sorted(result.left.items()))
        out.line(f"not chosen by the filters, left as they are: {result.unmatched}")
    if result.left and not dry_run:
        raise SystemExit(FAILED)
