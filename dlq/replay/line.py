"""A conversation's line for one target: which items form it, and which holds it back.

EventBridge delivered a conversation's events in order (start, ACD end, agent end,
customer end), and a CRM sync may assume it. A DLQ hands them back in any order, so the
worker that holds a conversation's lock replays the due items of one target in event
time order, in one pass (`ordered`); this module holds what that pass decides from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from math import inf

from dlq.clock import parse_iso
from dlq.codes import TARGET_HOLD_CODES
from dlq.events import EventKey
from dlq.ledger import FINAL_STATUSES, LedgerItem, Status, about_to_change, claimable
from dlq.ledger.model import route_of


def line_up(items: Iterable[LedgerItem], key: EventKey) -> list[LedgerItem]:
    """The conversation's items for `key`'s target and rule, oldest event first.

    Ties (and events without a readable time) are broken by event id, so every worker
    sees the same line.
    """
    route = route_of(key)
    same = [i for i in items if i.route == route and i.status is not Status.REJECTED]
    return sorted(same, key=_event_order)


def is_due(item: LedgerItem, now: float) -> bool:
    """Whether a claim of `item` could succeed now (the ledger's own claim rule)."""
    return claimable(
        item.status, next_attempt_at=item.next_attempt_at, lease_until=item.lease_until, now=now
    )


def waiting_since(item: LedgerItem) -> float:
    """When `item` began holding its line back: its first scheduled retry."""
    for entry in item.history:
        if entry.get("outcome") == Status.RETRY_SCHEDULED.value:
            started = parse_iso(str(entry.get("at")))
            if started is not None:
                return started.timestamp()
    updated = parse_iso(item.updated_at)
    return updated.timestamp() if updated else 0.0


@dataclass(frozen=True, slots=True)
class Hold:
    """An older item of the line that is not due: the newer ones wait for it."""

    item: LedgerItem
    #: When it may be attempted again (its retry's due time, or its lease's end).
    due: float
    #: When the line stops waiting for it (`REPLAY_ORDER_HOLD_SECONDS` after it began).
    expires: float

    @classmethod
    def of(cls, item: LedgerItem, *, hold_seconds: float) -> Hold:
        due = item.next_attempt_at if item.status is Status.RETRY_SCHEDULED else item.lease_until
        if item.last_error_code in TARGET_HOLD_CODES:
            # It waits for its target, as the newer items of its line do: never passed.
            return cls(item, due or 0.0, inf)
        return cls(item, due or 0.0, waiting_since(item) + hold_seconds)

    def wait(self, now: float) -> float:
        """How long a newer item's task should wait before it asks again."""
        return max(0.0, min(self.due, self.expires) - now)


def settled(items: Iterable[LedgerItem], *, imminent_within: float, now: float) -> bool:
    """Whether no item of a conversation is about to change (tracking may summarise it)."""
    return not any(
        item.status not in FINAL_STATUSES
        and about_to_change(
            item.status, next_attempt_at=item.next_attempt_at, now=now, within=imminent_within
        )
        for item in items
    )


def _event_order(item: LedgerItem) -> tuple[float, str]:
    happened = parse_iso(item.event_time) or parse_iso(item.received_at)
    return (happened.timestamp() if happened else 0.0, item.event_id)
