"""An operator's edited body (`redrive EVENT_ID --body-file FILE`), checked before it is kept.

The edit stands in for the event EventBridge would have delivered, so it must still be
that event: valid JSON of an EventBridge event with the same `id` and the same `source`
(the trust boundary judged the source at ingest and judges it again on the workers, from
the ledger's copy), within EventBridge's event size. The rule target's transformation
and the rule's pattern apply to it as to any event, when it is sent.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from dlq.events import EventBridgeEvent
from dlq.ledger import LedgerItem
from dlq.settings import MAX_EVENT_BYTES

#: The original and the edit share one DynamoDB item (400 KB at most, its other
#: attributes and history included).
ITEM_BODIES_LIMIT = 360 * 1024


class EditRefused(ValueError):
    """The edited body cannot stand in for the event; the message says why."""


def checked_edit(item: LedgerItem, text: str) -> str:
    """`text`, when it may replace `item`'s body; `EditRefused` saying why otherwise."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_EVENT_BYTES:
        raise EditRefused(f"it is {size} bytes, over EventBridge's {MAX_EVENT_BYTES}-byte limit")
    if size + len(item.body.encode("utf-8", "surrogatepass")) > ITEM_BODIES_LIMIT:
        raise EditRefused(
            f"it and the original body are over {ITEM_BODIES_LIMIT} bytes together, more than "
            "the ledger item holds: make the edit smaller"
        )
    try:
        document = json.loads(text)
    except ValueError as error:
        raise EditRefused(f"it is not JSON: {error}") from None
    try:
        event = EventBridgeEvent.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the document"
        raise EditRefused(f"it is not an EventBridge event: {where}: {first['msg']}") from None
    if event.id != item.event_id:
        raise EditRefused(
            f"its id {event.id!r} is not the event's ({item.event_id}): an edit keeps the id"
        )
    if item.source is not None and event.source != item.source:
        raise EditRefused(
            f"its source {event.source!r} is not the event's ({item.source}): an edit keeps "
            "the source, which the trust boundary judged"
        )
    return text
