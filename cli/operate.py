"""The operator's view of the ledger: `status`, `inspect` and `redrive`."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Any

import click
from rich.progress import Progress

from cli.main import friendly_errors, settings
from cli.output import Output
from dlq.aws import aws_client
from dlq.events import EventKey
from dlq.ledger import REDRIVABLE_STATUSES, ClaimRefused, Ledger, LedgerItem, Status
from dlq.settings import Settings

PENDING = (Status.RECEIVED, Status.RETRY_SCHEDULED, Status.IN_PROGRESS)


def ledger_of(config: Settings) -> Ledger:
    return Ledger(aws_client("dynamodb", config), config.ledger_table)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def status(as_json: bool) -> None:
    """Counts by status, DLQ error code and target; the oldest pending item."""
    items = list(ledger_of(settings()).scan())
    report = summarise(items)
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


def summarise(items: list[LedgerItem]) -> dict[str, Any]:
    """The `status` report as data (also what the demo's summary is checked against)."""
    pending = [i for i in items if i.status in PENDING]
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


@click.command()
@click.argument("event_id")
@click.option("--genesys", "live", is_flag=True, help="Also read the live attributes (1 call).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def inspect(event_id: str, live: bool, as_json: bool) -> None:
    """Everything about one event: DLQ error, original body, attempts, Genesys attributes."""
    import redis

    from dlq.tracking import TRACKED_PREFIX

    config = settings()
    ledger = ledger_of(config)
    items = ledger.items_for_event(event_id) or ledger.items_for_event(f"rejected:{event_id}")
    out = Output(as_json=as_json)
    if not items:
        out.error(f"no ledger item for event {event_id}; `dlq-replay status` lists what is there")
        raise SystemExit(1)
    cache = redis.Redis.from_url(config.redis_url)
    report = []
    for item in items:
        tracked = None
        if item.conversation_id:
            raw = cache.get(TRACKED_PREFIX + item.conversation_id)
            tracked = json.loads(raw) if raw else None
        entry = {
            **{k: v for k, v in asdict(item).items() if k not in ("body", "history", "dlq")},
            "dlq": asdict(item.dlq),
            "history": list(item.history),
            "body": _pretty(item.body),
            "tracking": tracked,
        }
        if live and item.conversation_id:
            entry["genesys_attributes"] = _live_attributes(config, item.conversation_id)
        report.append(entry)
    if as_json:
        out.json(report)
        return
    for entry in report:
        _show(out, entry, config.genesys_attribute_prefix)


def _show(out: Output, entry: dict[str, object], prefix: str) -> None:
    dlq = entry["dlq"]
    assert isinstance(dlq, dict)
    out.table(
        f"event {entry['event_id']} -> {entry['target_arn']}",
        ["field", "value"],
        [
            ("status", entry["status"]),
            ("attempts", entry["attempts"]),
            ("conversation", entry["conversation_id"] or "-"),
            ("detail-type", entry["detail_type"] or "-"),
            ("received", entry["received_at"]),
            ("updated", entry["updated_at"]),
            ("last error", entry["last_error"] or "-"),
            ("reject reason", entry["reject_reason"] or "-"),
            ("duplicates", entry["duplicates"]),
            ("DLQ error", f"{dlq['error_code']}: {dlq['error_message']}"),
            ("DLQ gave up on", f"{dlq['exhausted_retry_condition']} after {dlq['retry_attempts']}"),
            ("rule", dlq["rule_arn"] or "-"),
        ],
    )
    history = entry["history"]
    assert isinstance(history, list)
    out.table(
        "attempts",
        ["at", "outcome", "error"],
        [(h.get("at"), h.get("outcome"), h.get("error", "")) for h in history],
    )
    tracked = entry["tracking"]
    if isinstance(tracked, dict):
        state = f"error: {tracked['error']}" if tracked.get("error") else "written"
        out.line(
            f"Genesys attributes ({prefix}*): {state}, covering outcomes to {tracked['covered']}"
        )
    attributes = entry.get("genesys_attributes")
    if isinstance(attributes, dict):
        out.table("live Genesys attributes", ["attribute", "value"], sorted(attributes.items()))
    out.line("original body:")
    out.line(str(entry["body"]))


def _live_attributes(config: Settings, conversation_id: str) -> dict[str, str]:
    import redis

    from dlq.genesys import build_genesys_client

    client = build_genesys_client(config, redis.Redis.from_url(config.redis_url))
    conversation = client.get_conversation(conversation_id)
    prefix = config.genesys_attribute_prefix
    return {
        f"{participant.id}:{name}": value
        for participant in conversation.participants
        for name, value in participant.attributes.items()
        if name.startswith(prefix)
    }


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2)
    except ValueError:
        return body


@click.command()
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in REDRIVABLE_STATUSES]),
    help="Which statuses to redrive (default: failed and exhausted).",
)
@click.option("--error-code", help="Only items whose DLQ ERROR_CODE is this.")
@click.option("--target-arn", help="Only items for this target.")
@click.option("--rule-arn", help="Only items from this rule.")
@click.option("--detail-type", help="Only items of this detail-type.")
@click.option("--conversation-id", help="Only items of this conversation.")
@click.option("--since", type=click.DateTime(), help="Only items last updated after this time.")
@click.option("--until", type=click.DateTime(), help="Only items last updated before this time.")
@click.option("--dry-run", is_flag=True, help="List what would be redriven; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--rate", type=float, default=0.0, help="At most this many items per second.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def redrive(
    statuses: tuple[str, ...],
    error_code: str | None,
    target_arn: str | None,
    rule_arn: str | None,
    detail_type: str | None,
    conversation_id: str | None,
    since: datetime | None,
    until: datetime | None,
    dry_run: bool,
    yes: bool,
    rate: float,
    as_json: bool,
) -> None:
    """Put failed or exhausted items back to `received` and enqueue them again."""
    from tasks.application import app
    from tasks.producer import CeleryEnqueuer

    config = settings()
    ledger = ledger_of(config)
    wanted = [Status(s) for s in statuses] or sorted(REDRIVABLE_STATUSES)
    chosen = list(
        _select(
            ledger,
            wanted,
            since=since,
            until=until,
            match={
                "error_code": error_code,
                "target_arn": target_arn,
                "rule_arn": rule_arn,
                "detail_type": detail_type,
                "conversation_id": conversation_id,
            },
        )
    )
    out = Output(as_json=as_json)
    rows = [(i.event_id, i.target_arn, i.status.value, i.last_error or "") for i in chosen]
    if dry_run or not chosen:
        if as_json:
            out.json({"dry_run": dry_run, "items": [dict(zip(("event_id", "target_arn",
                      "status", "last_error"), r, strict=True)) for r in rows]})  # fmt: skip
        else:
            out.table(f"{len(chosen)} items would be redriven", ["event", "target", "status",
                      "last error"], rows)  # fmt: skip
        return
    if not yes:
        out.table("to redrive", ["event", "target", "status", "last error"], rows)
        click.confirm(f"Redrive {len(chosen)} items?", abort=True)
    enqueuer = CeleryEnqueuer(app)
    done, skipped = 0, 0
    with Progress(disable=not out.rich, transient=True) as progress:
        bar = progress.add_task("redriving", total=len(chosen))
        for item in chosen:
            started = time.monotonic()
            try:
                ledger.redrive(item.event_id, item.target_arn, note="redrive by operator")
            except ClaimRefused:
                skipped += 1  # changed since it was listed: leave it
            else:
                enqueuer.enqueue_replay(EventKey(item.event_id, item.target_arn))
                done += 1
            progress.advance(bar)
            if rate > 0:
                time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
    if as_json:
        out.json({"redriven": done, "skipped": skipped})
    else:
        out.line(f"redriven: {done}, skipped (changed meanwhile): {skipped}")


def _select(
    ledger: Ledger,
    statuses: list[Status],
    *,
    since: datetime | None,
    until: datetime | None,
    match: dict[str, str | None],
) -> Iterator[LedgerItem]:
    after = since.isoformat() if since else None
    before = until.isoformat() if until else None
    for status_ in statuses:
        for item in ledger.by_status(status_, updated_after=after, updated_before=before):
            values = {
                "error_code": item.dlq.error_code,
                "target_arn": item.target_arn,
                "rule_arn": item.dlq.rule_arn,
                "detail_type": item.detail_type,
                "conversation_id": item.conversation_id,
            }
            if all(want is None or values[key] == want for key, want in match.items()):
                yield item
