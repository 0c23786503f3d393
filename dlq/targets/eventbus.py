"""EventBridge event bus targets: the event put again under REPLAY_EVENT_BUS_SOURCE."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from dlq.targets.delivery import Replay
from dlq.targets.errors import TargetRejected, classify
from dlq.targets.kind import TargetKind


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
    return str(result["EventId"])


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
    send=lambda context, replay: put_bus_event(
        context.client("events", replay.delivered_to),
        replay,
        source=context.settings.replay_event_bus_source,
    ),
)
