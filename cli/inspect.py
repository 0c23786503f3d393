"""`dlq-replay inspect`: everything about one event, from the ledger and the tracking state.

The body and the payload are customer data: the fields REPLAY_MASKED_FIELDS names are
masked (`dlq.masking`), and a body that is not JSON is withheld, unless `--unmasked`, whose
every use is logged with the operator's identity (`cli.audit`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import click
import redis

from cli._common import friendly_errors, ledger_of, redis_of, settings
from cli.audit import record_access
from cli.output import Output
from cli.when import age
from dlq.clock import parse_iso
from dlq.genesys.client import GenesysClient, build_genesys_client
from dlq.genesys.errors import RateLimitWait
from dlq.ledger import LedgerItem
from dlq.ledger.model import WAITING
from dlq.masking import MaskPath, compile_mask_paths, mask_body
from dlq.redact import scrub
from dlq.settings import Settings
from dlq.tracking import last_tracked


@click.command()
@click.argument("event_id")
@click.option("--genesys", "live", is_flag=True, help="Also read the live attributes (1 call).")
@click.option(
    "--payload",
    "payload",
    is_flag=True,
    help="Also build what a redelivery sends now (the rule target's input transformation), "
    "beside the original body.",
)
@click.option(
    "--unmasked",
    is_flag=True,
    help="Show the body and payload as they are, customer data included (the fields of "
    "REPLAY_MASKED_FIELDS are masked otherwise); logged with your identity.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON. With --unmasked, `body` is the stored body byte for byte (its sha256 is "
    "`body_digest`, and a delivery's `payload_digest` when the target transformed nothing). "
    "Masked (the default), `body_masked` is true and `body` is the masked JSON, which cannot "
    "match either digest (null for a body that is not JSON).",
)
@friendly_errors
def inspect(event_id: str, live: bool, payload: bool, unmasked: bool, as_json: bool) -> None:
    """Everything about one event: DLQ error, original body, attempts, Genesys attributes."""
    config = settings()
    ledger = ledger_of(config)
    items = ledger.items_for_event(event_id) or ledger.items_for_event(f"rejected:{event_id}")
    out = Output(as_json=as_json)
    if not items:
        out.error(f"no ledger item for event {event_id}; `dlq-replay status` lists what is there")
        raise SystemExit(1)
    masks = None if unmasked else compile_mask_paths(config.replay_masked_fields)
    if unmasked:
        record_access(
            config,
            "inspect --unmasked",
            event_ids=[item.event_id for item in items],
            conversation_ids=[item.conversation_id or "" for item in items],
        )
    cache = redis_of(config)
    client = build_genesys_client(config, cache) if live else None
    report = []
    for item in items:
        tracked = None
        if item.conversation_id:
            tracked = last_tracked(cache, item.conversation_id) or None
        entry = {
            **{k: v for k, v in asdict(item).items() if k not in _SHOWN_APART},
            # Items written before errors were scrubbed at the source are scrubbed here.
            "last_error": scrub(item.last_error) if item.last_error else None,
            "dlq": asdict(item.dlq),
            "history": [_scrubbed(entry) for entry in item.history],
            **_body_fields(item, masks, exact=as_json),
            "tracking": tracked,
        }
        delivered = [h for h in item.history if h.get("delivered_to")]
        if delivered:
            entry["sent"] = {k: delivered[-1].get(k) for k in _SENT_FIELDS}
        if payload and item.status.value != "rejected":
            entry["payload_now"] = _payload_now(config, cache, item, masks, exact=as_json)
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
            ("error code", entry["last_error_code"] or "-"),
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
        "attempts and operators' actions",
        ["at", "outcome", "operator", "error / note"],
        [(h.get("at"), h.get("outcome"), h.get("operator", ""), _said(h)) for h in history],
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
    sent = entry.get("sent")
    if isinstance(sent, dict):
        out.table("what was sent", ["field", "value"], [(k, sent.get(k)) for k in _SENT_FIELDS])
    now = entry.get("payload_now")
    if isinstance(now, dict):
        recorded = sent.get("payload_digest") if isinstance(sent, dict) else None
        same = "" if recorded is None else (
            " (the same as recorded)" if recorded == now.get("digest") else
            " (differs from what was recorded: the rule's target changed since)"
        )  # fmt: skip
        out.line(f"payload a redelivery sends now, via {now.get('route')}{same}:")
        out.line(str(now.get("payload") or now.get("error")))
    if entry.get("forgotten_at"):
        out.line(f"original body: forgotten at {entry['forgotten_at']} (`dlq-replay forget`)")
        return
    out.line("original body:")
    out.line(str(entry["body"]))
    if entry.get("edited_body") is not None:
        out.line(f"edited body, sent instead ({entry['edited_body_digest']}):")
        out.line(str(entry["edited_body"]))


#: How long `inspect --genesys` waits for the shared budget before it gives up.
BUDGET_PATIENCE_SECONDS = 30.0


def _live_attributes(client: GenesysClient, conversation_id: str, prefix: str) -> dict[str, str]:
    # The workers share this budget; a person at a terminal can wait out a short turn.
    deadline = time.monotonic() + BUDGET_PATIENCE_SECONDS
    while True:
        try:
            conversation = client.get_conversation(conversation_id)
            break
        except RateLimitWait as wait:
            pause = wait.retry_after or 1.0
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
    return {
        f"{participant.id}:{name}": value
        for participant in conversation.participants
        for name, value in participant.attributes.items()
        if name.startswith(prefix)
    }


#: The item's fields `inspect` shows on their own terms (masked, scrubbed, nested).
_SHOWN_APART = ("body", "edited_body", "history", "dlq")
_SENT_FIELDS = ("at", "delivered_to", "route", "transformed", "payload_digest", "receipt")


def _payload_now(
    config: Settings,
    cache: redis.Redis,
    item: LedgerItem,
    masks: tuple[MaskPath, ...] | None,
    *,
    exact: bool,
) -> dict[str, object]:
    """What a redelivery of `item` would send now: the route and the rendered payload."""
    from dlq.errors import DlqReplayError
    from dlq.targets import Redeliverer
    from dlq.targets.transform import render

    try:
        plan = Redeliverer(config, cache=cache).plan(
            item.target_arn, rule_arn=item.rule_arn or "", override=item.target_override
        )
        if plan.target is None:
            shown = _shown(item.replay_body, masks, exact=exact)
            return {"route": plan.route, "payload": shown, "digest": None}
        rendered = render(plan.target.input, item.replay_body, rule_arn=item.rule_arn or "")
    except DlqReplayError as error:
        return {"route": "none", "error": f"not redeliverable now: {error}"}
    shown = _shown(rendered.payload, masks, exact=exact)
    return {"route": plan.route, "payload": shown, "digest": rendered.digest}


def _said(entry: Mapping[str, Any]) -> str:
    """A history entry's error, else its note (a resolve's reason, say); a run of waits
    says how long it lasted ("waited 12 min, 9 times: target breaker open")."""
    said = str(entry.get("error") or entry.get("note") or "")
    began, last = parse_iso(entry.get("since")), parse_iso(entry.get("at"))
    if entry.get("outcome") != WAITING or began is None or last is None:
        return said
    waited = age((last - began).total_seconds())
    return f"waited {waited}, {int(entry.get('times', 1))} times: {said}"


def _scrubbed(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A history entry with its texts scrubbed (`dlq.redact`)."""
    texts = ("error", "note")
    return {k: scrub(v) if k in texts and isinstance(v, str) else v for k, v in entry.items()}


def _body_fields(
    item: LedgerItem, masks: tuple[MaskPath, ...] | None, *, exact: bool
) -> dict[str, object]:
    """The body as `inspect` shows it, whether it is masked, and the stored body's digest.

    `exact` (JSON output): unmasked, the body is the stored text itself, so its sha256
    is `body_digest`; for a person, it is indented."""
    if item.forgotten_at is not None:
        return {"body": "", "body_masked": False, "body_digest": None}
    stored = "sha256:" + hashlib.sha256(item.body.encode("utf-8", "surrogatepass")).hexdigest()
    fields: dict[str, object] = {
        "body": _shown(item.body, masks, exact=exact),
        "body_masked": masks is not None,
        "body_digest": stored,
    }
    if item.edited_body is not None:  # an operator's (`redrive --body-file`): masked alike
        edited = item.edited_body.encode("utf-8", "surrogatepass")
        fields["edited_body"] = _shown(item.edited_body, masks, exact=exact)
        fields["edited_body_digest"] = "sha256:" + hashlib.sha256(edited).hexdigest()
    return fields


def _shown(body: str, masks: tuple[MaskPath, ...] | None, *, exact: bool) -> str | None:
    """A body as `inspect` shows it: its masked fields masked (`masks` None: as stored); a
    body that is not JSON is withheld when masking, its fields cannot be told apart.

    `exact` (JSON output): unmasked, the text as stored, byte for byte; masked, compact
    JSON, and None for a withheld body. Otherwise indented for a person."""
    if masks is None:
        return body if exact else _pretty(body)
    if exact:
        return mask_body(body, masks, indent=None)
    masked = mask_body(body, masks)
    if masked is None:
        return f"<{len(body)} characters that are not JSON: withheld; --unmasked shows them>"
    return masked


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body
