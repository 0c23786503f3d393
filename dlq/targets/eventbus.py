"""EventBridge event bus targets: refused, unless the operator opts in to a new source.

A faithful redelivery to a bus is impossible: `PutEvents` refuses sources that begin
with `aws.` (the Genesys partner source is `aws.partner/...`), so the event can only be
put under another source, which the rule that failed does not match, and it gets a new
id. Marking such an item `replayed` would be a lie; it ends `failed` with this reason
unless REPLAY_EVENT_BUS_SOURCE names the source to use, with a rule that matches it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from dlq.targets.delivery import Replay
from dlq.targets.errors import TargetRejected, UnsupportedTarget, classify
from dlq.targets.kind import SendContext, TargetKind


def put_bus_event(client: Any, replay: Replay, *, source: str) -> str:
    """Put the event again on an event bus, under `source`.

    This fans out to EVERY rule on that bus whose pattern matches, not only the rule
    whose target failed, and the event gets a new id; point a dedicated bus (or a rule
    on `source`) at the target when that matters. PutEvents refuses `aws.` sources,
    hence REPLAY_EVENT_BUS_SOURCE instead of the original `source`.
    """
    event = _bus_event(replay)
    entry: dict[str, Any] = {
        "EventBusName": replay.delivered_to,
        "Source": source,
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"], ensure_ascii=False),
        "Resources": [str(r) for r in event.get("resources") or []],
    }
    when = _event_time(event.get("time"))
    if when is not None:
        entry["Time"] = when
    response = client.put_events(Entries=[entry])
    result = response["Entries"][0]
    if response.get("FailedEntryCount"):
        raise classify(
            replay.delivered_to, str(result.get("ErrorCode")), str(result.get("ErrorMessage"))
        )
    return f"{result['EventId']} (re-sourced as {source})"


def send(context: SendContext, replay: Replay) -> str:
    """Put the event again under REPLAY_EVENT_BUS_SOURCE, or refuse without it."""
    source = context.options.event_bus_source
    if not source:
        raise UnsupportedTarget(
            f"{replay.delivered_to} is an event bus: the event cannot be put there again as it "
            "was (PutEvents refuses the partner source 'aws.partner/...', so the rule that "
            "failed would not match it, and the event would get a new id). To redeliver anyway "
            "under a source of your own, set REPLAY_EVENT_BUS_SOURCE on the workers and add a "
            "rule on that bus matching it, then redrive",
            target_arn=replay.delivered_to,
            code="EventBusNotReplayable",
        )
    return put_bus_event(context.client("events", replay.delivered_to), replay, source=source)


def _bus_event(replay: Replay) -> dict[str, Any]:
    try:
        event = json.loads(replay.body)
    except ValueError:
        event = None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("detail-type"), str)
        or not isinstance(event.get("detail"), dict)
    ):
        raise TargetRejected(
            f"event {replay.event_id} is not an EventBridge event with a detail-type and a "
            f"detail object, so it cannot be put on {replay.delivered_to}",
            target_arn=replay.delivered_to,
            code="InvalidEvent",
        )
    return event


def _event_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


KIND = TargetKind(
    name="events",
    label="EventBridge event buses",
    arn_service="events",
    resource_prefix="event-bus/",
    send=send,
)
