"""What ordered passes settled, kept in Redis for the tasks of the items they settled.

A pass attempts every due item of its conversation's line, so the tasks queued for the
other items find their work done; the record lets them end at once instead of claiming.
A record answers only for the generation of the item it was made for (its
`redriven_at`): a redriven item's task carries the new generation, finds no answer, and
attempts the item again.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis
from redis.typing import EncodableT, FieldT

from dlq.events import EventKey
from dlq.fleet import fleet_key
from dlq.ledger.model import route_of

#: How long a pass's results stay readable by the tasks of the items it settled: far
#: above any queue wait. A task that misses them still ends right, through the ledger.
RESULTS_TTL_SECONDS = 24 * 3600
_SEP = "@"


def results_key(conversation_id: str) -> str:
    return fleet_key("order", "done", conversation_id)


class PassResults:
    """What ordered passes settled, by conversation, in Redis (a hash per conversation)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def record(
        self, conversation_id: str, outcomes: Mapping[EventKey, tuple[str, str | None]]
    ) -> None:
        """Keep `outcomes`: each key's (outcome, generation of the item it settled)."""
        if not outcomes:
            return
        name = results_key(conversation_id)
        fields: dict[FieldT, EncodableT] = {
            _field(key): f"{outcome}{_SEP}{generation or ''}"
            for key, (outcome, generation) in outcomes.items()
        }
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(name, mapping=fields)
        pipe.expire(name, RESULTS_TTL_SECONDS)
        pipe.execute()

    def outcome(
        self, conversation_id: str, key: EventKey, *, generation: str | None = None
    ) -> str | None:
        """The outcome a pass recorded for this generation of `key`'s item, if any."""
        raw = self._redis.hget(results_key(conversation_id), _field(key))
        if raw is None:
            return None
        outcome, _, recorded = (raw.decode() if isinstance(raw, bytes) else raw).partition(_SEP)
        return outcome if recorded == (generation or "") else None


def _field(key: EventKey) -> str:
    return f"{key.event_id}|{route_of(key)}"
