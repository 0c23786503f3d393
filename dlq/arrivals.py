"""What the ingest tells the workers about events that may still be on their way.

A DLQ hands a conversation's events back in any order, and the ingest may take them
more slowly than the workers replay them: an ordered pass that ran as soon as its first
event arrived would deliver a later event before an earlier one still in the DLQ. Two
short-lived signals in Redis let a pass wait for the rest:

- when the ingest last took an event of each conversation (`dlq:arrival:<conversation>`,
  kept `REPLAY_INGEST_MAX_HOLD_SECONDS`);
- that the poller is draining the DLQ (`dlq:arrival:draining`): set while its receives
  bring messages, removed by a receive that brings none, and lapsing on its own soon
  after the poller stops. The Lambda front door cannot tell, so it sets only the first.

A pass waits while its conversation's last arrival is younger than
`REPLAY_INGEST_QUIET_SECONDS`, or while the DLQ drains; never longer than
`REPLAY_INGEST_MAX_HOLD_SECONDS` after its oldest waiting item was received, so that a
steady trickle still drains (order is then kept as far as the hold reached).
"""

from __future__ import annotations

import redis

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.fleet import fleet_key

DRAINING_KEY = fleet_key("arrival", "draining")


def arrival_key(conversation_id: str) -> str:
    return fleet_key("arrival", conversation_id)


class Arrivals:
    """The ingest's side notes for ordered passes (one Redis round trip each)."""

    def __init__(
        self, client: redis.Redis, *, keep_seconds: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        """`keep_seconds`: how long a note lives (the longest a pass may hold for it)."""
        self._redis = client
        self._keep = max(1, round(keep_seconds))
        self._clock = clock

    def arrived(self, conversation_id: str) -> None:
        """The ingest took an event of `conversation_id` (before its replay is enqueued)."""
        self._redis.set(arrival_key(conversation_id), repr(self._clock.now()), ex=self._keep)

    def draining(self, busy: bool, *, for_seconds: float) -> None:
        """The poller's last receive brought messages (`busy`), or none."""
        if busy:
            self._redis.set(DRAINING_KEY, "1", ex=max(1, round(for_seconds)))
        else:
            self._redis.delete(DRAINING_KEY)

    def wait(self, conversation_id: str, *, quiet_seconds: float) -> float:
        """Seconds a pass over `conversation_id` should wait for events still on their way
        (0.0: nothing is known to be coming)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(arrival_key(conversation_id))
        pipe.exists(DRAINING_KEY)
        last, draining = pipe.execute()
        wait = 0.0
        if last is not None:
            wait = float(last) + quiet_seconds - self._clock.now()
        if draining:
            wait = max(wait, quiet_seconds)
        return max(0.0, wait)
