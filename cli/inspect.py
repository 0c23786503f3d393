"""`dlq-replay inspect`: everything about one event, from the ledger and the tracking state."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
import redis

from cli._common import friendly_errors, ledger_of, settings
from cli.output import Output
from dlq.genesys import GenesysClient, build_genesys_client
from dlq.tracking import last_tracked


@click.command()
@click.argument("event_id")
@click.option("--genesys", "live", is_flag=True, help="Also read the live attributes (1 call).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def inspect(event_id: str, live: bool, as_json: bool) -> None:
    """Everything about one event: DLQ error, original body, attempts, Genesys attributes."""
    config = settings()
    ledger = ledger_of(config)
    items = ledger.items_for_event(event_id) or ledger.items_for_event(f"rejected:{event_id}")
    out = Output(as_json=as_json)
    if not items:
        out.error(f"no ledger item for event {event_id}; `dlq-replay status` lists what is there")
        raise SystemExit(1)
    cache = redis.Redis.from_url(config.redis_url)
    client = build_genesys_client(config, cache) if live else None
    report = []
    for item in items:
        tracked = None
        if item.conversation_id:
            tracked = last_tracked(cache, item.conversation_id) or None
        entry = {
            **{k: v for k, v in asdict(item).items() if k not in ("body", "history", "dlq")},
            "dlq": asdict(item.dlq),
            "history": list(item.history),
            "body": _pretty(item.body),
            "tracking": tracked,
        }
        if client is not None and item.conversation_id:
            entry["genesys_attributes"] = _live_attributes(
                client, item.conversation_id, config.genesys_attribute_prefix
            )
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


def _live_attributes(client: GenesysClient, conversation_id: str, prefix: str) -> dict[str, str]:
    conversation = client.get_conversation(conversation_id)
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
