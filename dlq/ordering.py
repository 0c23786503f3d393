"""A conversation's events reach a target in the order they happened (`REPLAY_ORDER`).

EventBridge delivered a conversation's events in order (start, ACD end, agent end,
customer end), and a CRM sync may assume it. A DLQ hands them back in any order, so the
worker that holds a conversation's lock replays the due items of one target in event
time order, in one pass; this module holds what that pass decides from: which items
form the line, which one holds the line back, and the record of what a pass did, which
lets the tasks of items someone else's pass already settled end at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis
from redis.typing import EncodableT, FieldT

from dlq.clock import parse_iso
from dlq.events import EventKey
from dlq.ledger import FINAL_STATUSES, LedgerItem, Status
from dlq.ledger.model import route_of

RESULTS_PREFIX = "dlq:order:done:"
#: How long a pass's results stay readable by the tasks of the items it settled: far
#: above any queue wait. A task that misses them still ends right, through the ledger.
RESULTS_TTL_SECONDS = 24 * 3600


def line_up(items: Iterable[LedgerItem], key: EventKey) -> list[LedgerItem]:
    """The conversation's items for `key`'s target and rule, oldest event first.

    Ties (and events without a readable time) are broken by event id, so every worker
    sees the same line.
    """
    route = route_of(key)
    same = [i for i in items if i.route == route and i.status is not Status.REJECTED]
    return sorted(same, key=_event_order)


def is_due(item: LedgerItem, now: float) -> bool:
    """Whether a claim of `item` could succeed now (the ledger's own claim condition)."""
    if item.status is Status.RECEIVED:
        return True
    if item.status is Status.RETRY_SCHEDULED:
        return (item.next_attempt_at or 0.0) <= now
    if item.status is Status.IN_PROGRESS:
        return (item.lease_until or 0.0) < now
    return False


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
        return cls(item, due or 0.0, waiting_since(item) + hold_seconds)

    def wait(self, now: float) -> float:
        """How long a newer item's task should wait before it asks again."""
        return max(0.0, min(self.due, self.expires) - now)


def settled(items: Iterable[LedgerItem], *, imminent_within: float, now: float) -> bool:
    """Whether no item of a conversation is about to change (tracking may summarise it)."""
    for item in items:
        if item.status in FINAL_STATUSES:
            continue
        if item.status is Status.RETRY_SCHEDULED and (
            (item.next_attempt_at or 0.0) > now + imminent_within
        ):
            continue
        return False
    return True


class PassResults:
    """What ordered passes settled, by conversation, in Redis (a hash per conversation)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def record(self, conversation_id: str, outcomes: Mapping[EventKey, str]) -> None:
        if not outcomes:
            return
        name = RESULTS_PREFIX + conversation_id
        fields: dict[FieldT, EncodableT] = {
            _field(key): outcome for key, outcome in outcomes.items()
        }
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(name, mapping=fields)
        pipe.expire(name, RESULTS_TTL_SECONDS)
        pipe.execute()

    def outcome(self, conversation_id: str, key: EventKey) -> str | None:
        raw = self._redis.hget(RESULTS_PREFIX + conversation_id, _field(key))
        return raw.decode() if isinstance(raw, bytes) else raw


def _field(key: EventKey) -> str:
    return f"{key.event_id}|{route_of(key)}"


def _event_order(item: LedgerItem) -> tuple[float, str]:
    happened = parse_iso(item.event_time) or parse_iso(item.received_at)
    return (happened.timestamp() if happened else 0.0, item.event_id)
