"""What ordered passes settled, kept in Redis for the tasks of the items they settled.

A pass attempts every due item of its conversation's line, so the tasks queued for the
other items find their work done; the record lets them end at once instead of claiming.
A record answers only for the generation of the item it was made for (its
`redriven_at`): a redriven item's task carries the new generation, finds no answer, and
attempts the item again. The pass's own item is marked so (`reported`): the pass's task
answered its outcome already, so another task of the item (the line's task back at its
hold's end while a parked pass ran the line) need not report it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import redis
from redis.typing import EncodableT, FieldT

from dlq.events import EventKey
from dlq.fleet import fleet_key
from dlq.ledger.model import route_of

#: How long a pass's results stay readable by the tasks of the items it settled: far
#: above any queue wait. A task that misses them still ends right, through the ledger.
RESULTS_TTL_SECONDS = 24 * 3600
_SEP = "@"


_OWN = "own"


def results_key(conversation_id: str) -> str:
    return fleet_key("order", "done", conversation_id)


@dataclass(frozen=True, slots=True)
class Settled:
    """What a pass recorded for an item: its outcome, and whether the pass's own task
    answered it (the item was the pass's own)."""

    outcome: str
    reported: bool


class PassResults:
    """What ordered passes settled, by conversation, in Redis (a hash per conversation)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def record(
        self,
        conversation_id: str,
        outcomes: Mapping[EventKey, tuple[str, str | None]],
        *,
        own: EventKey | None = None,
    ) -> None:
        """Keep `outcomes`: each key's (outcome, generation of the item it settled); `own`:
        the pass's own item, whose outcome its task answers."""
        if not outcomes:
            return
        name = results_key(conversation_id)
        fields: dict[FieldT, EncodableT] = {
            _field(key): f"{outcome}{_SEP}{generation or ''}"
            + (f"{_SEP}{_OWN}" if key == own else "")
            for key, (outcome, generation) in outcomes.items()
        }
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(name, mapping=fields)
        pipe.expire(name, RESULTS_TTL_SECONDS)
        pipe.execute()

    def settled(
        self, conversation_id: str, key: EventKey, *, generation: str | None = None
    ) -> Settled | None:
        """What a pass recorded for this generation of `key`'s item, if it did."""
        raw = self._redis.hget(results_key(conversation_id), _field(key))
        if raw is None:
            return None
        outcome, _, rest = (raw.decode() if isinstance(raw, bytes) else raw).partition(_SEP)
        recorded, _, mark = rest.partition(_SEP)
        if recorded != (generation or ""):
            return None
        return Settled(outcome, reported=mark == _OWN)

    def outcome(
        self, conversation_id: str, key: EventKey, *, generation: str | None = None
    ) -> str | None:
        """The outcome a pass recorded for this generation of `key`'s item, if any."""
        settled = self.settled(conversation_id, key, generation=generation)
        return settled.outcome if settled is not None else None


def _field(key: EventKey) -> str:
    return f"{key.event_id}|{route_of(key)}"
