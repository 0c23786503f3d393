"""What the ingest tells the workers about events that may still be on their way.

A DLQ hands a conversation's events back in any order, and the ingest may take them
more slowly than the workers replay them: an ordered pass that ran as soon as its first
event arrived would deliver a later event before an earlier one still in the DLQ. Two
short-lived signals in Redis let a pass wait for the rest:

- when the ingest last took an event of each conversation (`dlq:arrival:<conversation>`),
  and when it took the first of the current hold (`dlq:arrival-first:<conversation>`),
  both kept `REPLAY_INGEST_MAX_HOLD_SECONDS`;
- that the poller is draining the DLQ (`dlq:arrival:draining`): set while its receives
  bring messages, removed by a receive that brings none, and lapsing on its own soon
  after the poller stops. The Lambda front door cannot tell, so it sets only the first.

A pass waits while its conversation's last arrival is younger than
`REPLAY_INGEST_QUIET_SECONDS`, or while the DLQ drains; never longer than
`REPLAY_INGEST_MAX_HOLD_SECONDS` after the first arrival of the hold, so that a steady
trickle still drains (order is then kept as far as the hold reached). While the DLQ
drains, the poller parks each line's pass itself (a line: the conversation's events for
one target and rule): the first event of a line it takes parks the line's pass
(`arrived(park=...)`, one HSETNX), and its task is sent to come back when the hold ends,
in case the drain's end is never seen (the poller stopped); the line's later events get
no task of their own, their items wait in the ledger for the pass. The receive that ends
the drain takes the parked passes (`unpark`) and the front door sends them, a quiet period
later. A task that meets a drain on its own (a retry, the reconciler's, the Lambda front
door's) does the same from the worker: one task of each line takes the turn (`take_turn`)
and parks the line's pass (`park`), the line's other tasks end (`parked`). A pass that
runs while the DLQ still drains (its hold ended) takes its line off the parked list first
(`leave`), so the line's next events park a pass again. What a pass leaves goes on in
tasks it sends (a retry, the rest of the line past its time bound); the reconciler brings
back an item nobody replayed. A quiet period's rest has a known end: every task comes
back then. All of it is read from Redis, before the conversation's lock.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from math import inf

import redis

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.events import EventKey
from dlq.fleet import digest, fleet_key
from dlq.redisclient import decoded

DRAINING_KEY = fleet_key("arrival", "draining")
#: How long a worker's read of the drain flag stands for its next holds (at most a
#: quarter of REPLAY_INGEST_QUIET_SECONDS: `tasks.runtime`).
DRAINING_REUSE_SECONDS = 0.5
#: While the DLQ drains, tracking's deferral grows with the hold, up to this many quiet
#: periods (`dlq.tracking`): fewer comebacks, and at most that late after the drain ends.
DRAIN_WAIT_QUIETS = 5
#: The passes parked until the drain ends: conversation -> the replay to send (`Parked`).
PARKED_KEY = fleet_key("arrival", "parked")
#: The conversations whose tracking run parked for the drain (`dlq.tracking`).
PARKED_TRACKING_KEY = fleet_key("arrival", "parked-tracking")


def arrival_key(conversation_id: str) -> str:
    return fleet_key("arrival", conversation_id)


def first_arrival_key(conversation_id: str) -> str:
    return fleet_key("arrival-first", conversation_id)


def route_digest(key: EventKey) -> str:
    """The line (target and rule) an item's pass replays, as one part of a key."""
    return digest(f"{key.target_arn} {key.rule_arn}")


def parked_field(conversation_id: str, key: EventKey) -> str:
    """The field of `key`'s line in the parked passes' hash."""
    return f"{conversation_id}|{route_digest(key)}"


def turn_key(conversation_id: str, route: str) -> str:
    """The turn of one line of a conversation (`route`: its `route_digest`)."""
    return fleet_key("arrival-turn", conversation_id, route)


@dataclass(frozen=True, slots=True)
class Hold:
    """How long an ordered pass should wait for arrivals (`wait`, 0.0: go now), how long
    until its conversation's hold ends whatever arrives (`ends_in`), and whether the wait
    is the DLQ's drain (open-ended) rather than a quiet period's rest (known)."""

    wait: float
    ends_in: float
    draining: bool = False


NO_HOLD = Hold(0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Parked:
    """A replay whose conversation's pass waits for the drain to end: what to send then."""

    key: EventKey
    lock: str
    generation: str | None = None

    def to_json(self) -> str:
        key = self.key
        return json.dumps([key.event_id, key.target_arn, key.rule_arn, self.lock, self.generation])

    @classmethod
    def from_json(cls, raw: bytes | str) -> Parked:
        event_id, target_arn, rule_arn, lock, generation = json.loads(raw)
        return cls(EventKey(event_id, target_arn, rule_arn), lock, generation)


class Sent(enum.Enum):
    """When an arrival's replay task goes, as its note found."""

    #: Its own task, now (the DLQ is not draining, or the note could not be made).
    NOW = "now"
    #: It parked its line's pass while the DLQ drains: its task is sent to come back when
    #: the hold ends.
    PARKED = "parked"
    #: Its line's pass was parked already: that pass replays it, and it has no task of its own.
    BEHIND = "behind"


@dataclass(frozen=True, slots=True)
class Arrival:
    """What the ingest's note of an arrival found: whether the event opened its
    conversation's hold (`first`), and when its replay task goes (`sent`)."""

    first: bool
    sent: Sent = Sent.NOW


class Arrivals:
    """The ingest's side notes for ordered passes (one Redis round trip each)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        keep_seconds: float,
        draining_reuse_seconds: float = 0.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """`keep_seconds`: how long a note lives (the longest a pass may hold for it).
        `draining_reuse_seconds`: how long a read of the drain flag stands for the holds
        this process reads next (keep it well below REPLAY_INGEST_QUIET_SECONDS: a drain
        that starts is seen that much later, within its first arrivals' quiet period)."""
        self._redis = client
        self._keep = max(1, round(keep_seconds))
        self._reuse = draining_reuse_seconds
        self._clock = clock
        #: (when read, whether the DLQ drained then): this process's latest read.
        self._seen: tuple[float, bool] = (-inf, False)
        self._parked_here = False

    @property
    def keep_seconds(self) -> int:
        """How long a note lives: the longest a pass holds for arrivals."""
        return self._keep

    def arrived(self, conversation_id: str, *, park: Parked | None = None) -> Arrival:
        """The ingest took an event of `conversation_id` (before its replay is enqueued):
        note it, and whether it is the first of a hold (no other arrival in the last
        `keep_seconds`). `park`: the DLQ drains (the poller's receive brought it): park
        the event's line's pass, unless one is parked already (one round trip; a second,
        the hash's expiry, when it parked)."""
        now = repr(self._clock.now())
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(arrival_key(conversation_id), now, ex=self._keep)
        pipe.set(first_arrival_key(conversation_id), now, ex=self._keep, nx=True)
        if park is not None:
            pipe.hsetnx(PARKED_KEY, parked_field(conversation_id, park.key), park.to_json())
        answers = pipe.execute()
        first = bool(answers[1])
        if park is None:
            return Arrival(first)
        if not answers[2]:
            return Arrival(first, Sent.BEHIND)
        self._parked_here = True
        self._redis.expire(PARKED_KEY, self._keep)
        return Arrival(first, Sent.PARKED)

    def parked_here(self) -> bool:
        """Whether this process parked a pass since it last took the parked ones: a drain
        another receiver ended may have been taken before it (see `unpark`)."""
        return self._parked_here

    def draining(self, busy: bool, *, for_seconds: float) -> bool:
        """The poller's last receive brought messages (`busy`), or none; whether this
        call ended a drain (the note was there, and is gone now)."""
        self._seen = (self._clock.now(), busy)
        if busy:
            self._redis.set(DRAINING_KEY, "1", ex=max(1, round(for_seconds)))
            return False
        return bool(self._redis.delete(DRAINING_KEY))

    def is_draining(self) -> bool:
        """Whether the poller's receives still bring messages (read now)."""
        draining = bool(self._redis.exists(DRAINING_KEY))
        self._seen = (self._clock.now(), draining)
        return draining

    def recently_draining(self) -> bool:
        """Whether the DLQ drains, as this process read it within `draining_reuse_seconds`
        (a drain runs hundreds of replays a second: one read stands for them all)."""
        read_at, draining = self._seen
        if 0 <= self._clock.now() - read_at < self._reuse:
            return draining
        return self.is_draining()

    def wait(self, conversation_id: str, *, quiet_seconds: float) -> float:
        """Seconds until nothing is known to be coming for `conversation_id` any more, as
        far as one quiet period tells (0.0: nothing is)."""
        last = self._redis.get(arrival_key(conversation_id))
        return self._quiet_wait(last, self.recently_draining(), quiet_seconds)

    def hold(self, conversation_id: str, *, quiet_seconds: float) -> Hold:
        """How long an ordered pass over `conversation_id` should wait for events still on
        their way: the rest of the quiet period, or while the DLQ drains until the hold's
        end (a parked pass is sent sooner, when the drain ends: `park`); never past the
        hold's end, `keep_seconds` after its first arrival (whose note lapses then)."""
        last, first = self._redis.mget(
            arrival_key(conversation_id), first_arrival_key(conversation_id)
        )
        if first is None:
            return NO_HOLD
        draining = self.recently_draining()
        wait = self._quiet_wait(last, draining, quiet_seconds)
        if wait <= 0:
            return NO_HOLD
        held = self._clock.now() - float(first)
        ends_in = self._keep - held
        if ends_in <= 0:
            return NO_HOLD
        if draining:  # no known end: until the hold's, unless the drain's is seen first
            wait = ends_in
        return Hold(min(wait, ends_in), ends_in, bool(draining))

    def take_turn(self, conversation_id: str, key: EventKey, seconds: float) -> bool:
        """Whether the asking task (of item `key`) is the one of its conversation's line
        to park the line's pass for the next `seconds` (no other task holds the turn)."""
        turn = turn_key(conversation_id, route_digest(key))
        return bool(self._redis.set(turn, "1", nx=True, px=max(1, int(seconds * 1000))))

    def park(self, conversation_id: str, replay: Parked) -> None:
        """Keep `replay` to be sent when the drain ends (the turn's task: see `unpark`)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(PARKED_KEY, parked_field(conversation_id, replay.key), replay.to_json())
        pipe.expire(PARKED_KEY, self._keep)
        pipe.execute()

    def leave(self, conversation_id: str, key: EventKey) -> None:
        """A pass of `key`'s line runs while the DLQ drains (its hold ended): the line is
        no longer parked, so that its next events park a pass again instead of waiting for
        the drain's end behind one that has run."""
        self._redis.hdel(PARKED_KEY, parked_field(conversation_id, key))

    def park_tracking(self, conversation_id: str) -> None:
        """Tracking of `conversation_id` waits for the drain to end (see `unpark_tracking`)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(PARKED_TRACKING_KEY, conversation_id)
        pipe.expire(PARKED_TRACKING_KEY, self._keep)
        pipe.execute()

    def unpark_tracking(self) -> list[str]:
        """The conversations whose tracking parked for the drain, taken (once)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.smembers(PARKED_TRACKING_KEY)
        pipe.delete(PARKED_TRACKING_KEY)
        raw, _ = pipe.execute()
        return sorted(decoded(c) for c in raw)

    def unpark(self) -> list[Parked]:
        """The passes parked for the drain, taken (the caller that ended the drain sends
        them): their turns end too, so that if a drain starts again before they run, a
        task of their line can park again."""
        self._parked_here = False
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(PARKED_KEY)
        pipe.delete(PARKED_KEY)
        raw, _ = pipe.execute()
        if raw:
            # `<conversation>|<route digest>`; a worker before lines parked `<conversation>`.
            turns = (fleet_key("arrival-turn", *decoded(line).split("|", 1)) for line in raw)
            self._redis.delete(*turns)
        return [Parked.from_json(r) for r in raw.values()]

    def _quiet_wait(self, last: bytes | str | None, draining: bool, quiet_seconds: float) -> float:
        wait = 0.0
        if last is not None:
            wait = float(last) + quiet_seconds - self._clock.now()
        if draining:
            wait = max(wait, quiet_seconds)
        return max(0.0, wait)
