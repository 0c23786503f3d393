"""How many ledger items each counted status holds, kept as items move (a Redis hash).

Counting a status with `Select=COUNT` reads its whole index each time: one sample of a
100,000-event backlog cost 22,449 read units, and `failed` items were counted every minute
for their whole 90-day life. Instead every status change the ledger writes
(`dlq.ledger.moves`) moves one count in the hash `dlq:tally:<table>`, and the sampler and
`status` read the hash: what they cost no longer grows with the table.

Counts kept from moves drift: a process can die between its ledger write and the count,
Redis can be flushed, and DynamoDB's TTL expiry moves nothing. So a recount sets them
from the table (one `Select=COUNT` per counted status, by one process under a lease) when
the hash has none (a new Redis, a flush) and then every REPLAY_TALLY_RECOUNT_SECONDS (6 h
by default: its read units spread over that time); the drift it finds is logged and kept
in the hash (`drift:<status>`) for `status` to show. Moves that land while a status is
being counted stay counted: the recount adds the difference it found, never overwrites.

The workers and the poller do not send each move as it happens: they sum them in process
(`dlq.metrics.buffer`) and write them every `FLUSH_SECONDS` in one pipeline, a few
commands a flush instead of one an item's move (a move out of a status, one flush later:
after the move in that another process may hold). The counts then lag by an interval or
two, and a process that dies loses its last ones: the same drift as above, set right by
the same recount. A recount that reads the table while moves wait in a buffer counts them
twice (the table holds them, and their flush adds them): a second's moves at most, which
the next recount finds, sooner when a count went below zero. Short-lived commands
(`redrive`, `resolve`...) write their moves at once, so `status` after them is exact.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.ledger import Status
from dlq.metrics.buffer import CountSink, DirectCounts
from dlq.redisclient import decoded

log = logging.getLogger(__name__)

TALLY_PREFIX = "dlq:tally:"
RECOUNT_LEASE_PREFIX = "dlq:tally:recount:"
#: The statuses counted: what waits for a worker or an operator, and what operators ended.
#: (`replayed` and `rejected`, most of the table, are counted as outcomes instead:
#: `dlq.metrics.counters`. `in_progress` holds only the items under a live lease, as many
#: as the fleet's threads: the sampler counts it in the table, and a replayed event moves
#: two counts, not four.)
COUNTED = (
    Status.RECEIVED,
    Status.RETRY_SCHEDULED,
    Status.FAILED,
    Status.EXHAUSTED,
    Status.RESOLVED,
)
RECOUNTED_AT = "recounted_at"
#: REPLAY_TALLY_RECOUNT_SECONDS's default: how often the counts are set from the table.
RECOUNT_SECONDS = 21600.0
#: A recount of a large table takes seconds a status; the lease outlives it.
RECOUNT_LEASE_SECONDS = 900


@dataclass(frozen=True, slots=True)
class Counts:
    """The tally as read: a count per counted status, when it was last set from the table,
    and how far the counts kept from moves were off then."""

    by_status: Mapping[Status, int]
    recounted_at: float
    drift: Mapping[Status, int] = field(default_factory=dict)


class StatusTally:
    """The maintained counts of one ledger table; a `dlq.ledger.moves.StatusMoves`."""

    def __init__(
        self,
        client: redis.Redis,
        table: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        refused_level: int = logging.WARNING,
        counts: CountSink | None = None,
    ) -> None:
        """`counts`: the process's `CountBuffer`, which sums the moves and writes them at
        its next flush (long-running processes); without one, each move is written as it
        happens, and one Redis refuses is logged at `refused_level` (a command that fails
        on the same Redis next says so itself: the CLI's DEBUG)."""
        self._redis = client
        self._counts = counts or DirectCounts(
            client,
            consequence="the status counts drift until the next recount (status and the "
            "metrics say when it was)",
            level=refused_level,
            clock=clock,
        )
        self._key = TALLY_PREFIX + table
        self._lease = RECOUNT_LEASE_PREFIX + table
        self._clock = clock

    # --- as items move (every process that writes the ledger) ------------------------

    def moved(self, old: Status | None, new: Status) -> None:
        """Count one item out of `old` and into `new` (one round trip, none when neither
        is counted; with a buffer, none until its flush). Never raises: the ledger write
        it follows stands.

        Before the first recount (a new or flushed Redis) the moves count too: the recount
        adds what it finds missing to whatever the moves made, so they are not lost.
        """
        if old is new:
            return
        deltas = {s.value: d for s, d in ((old, -1), (new, 1)) if s in COUNTED}
        if deltas:
            self._counts.add(self._key, deltas)

    # --- reading (the sampler, status) -----------------------------------------------

    def counts(self) -> Counts | None:
        """The counts, or None before the first recount (a new or flushed Redis)."""
        raw = {decoded(k): decoded(v) for k, v in self._redis.hgetall(self._key).items()}
        if RECOUNTED_AT not in raw:
            return None
        return Counts(
            by_status={s: int(raw.get(s.value, 0)) for s in COUNTED},
            recounted_at=float(raw[RECOUNTED_AT]),
            drift={s: int(raw[f"drift:{s.value}"]) for s in COUNTED if f"drift:{s.value}" in raw},
        )

    # --- reconciling with the table (one process at a time) ---------------------------

    def due(self, *, every: float) -> bool:
        """Whether a recount is due: never done, done `every` seconds ago or more, or a
        count below zero (a writer that moves no count: a process of an older version)."""
        return self._due(self.counts(), every=every)

    def _due(self, counts: Counts | None, *, every: float) -> bool:
        return (
            counts is None
            or self._clock.now() - counts.recounted_at >= every
            or min(counts.by_status.values()) < 0
        )

    def recount(self, count_status: Callable[[Status], int]) -> Counts | None:
        """Set the counts from the table (`count_status`: `Ledger.count_by_status`); None
        when another process holds the recount's lease (it is recounting now)."""
        token = uuid.uuid4().hex
        if not self._redis.set(self._lease, token, nx=True, ex=RECOUNT_LEASE_SECONDS):
            return None
        try:
            first = self._redis.hget(self._key, RECOUNTED_AT) is None
            drift: dict[Status, int] = {}
            for status in COUNTED:
                kept = int(self._redis.hget(self._key, status.value) or 0)
                counted = count_status(status)
                # The moves counted while the table was read stay: add the difference.
                self._redis.hincrby(self._key, status.value, counted - kept)
                drift[status] = counted - kept
            fields: dict[Any, float] = {RECOUNTED_AT: self._clock.now()}  # redis-py's union
            if not first:
                fields.update({f"drift:{s.value}": d for s, d in drift.items()})
                off = {s.value: d for s, d in drift.items() if d}
                if off:
                    log.warning(
                        f"status counts recounted from the ledger; they had drifted by {off} "
                        "(a process stopped between a ledger write and its count, or items "
                        "expired by TTL): set right"
                    )
            self._redis.hset(self._key, mapping=fields)
        finally:
            if self._redis.get(self._lease) in (token, token.encode()):
                self._redis.delete(self._lease)
        return self.counts()

    def current(self, count_status: Callable[[Status], int], *, every: float) -> Counts | None:
        """The counts, recounted first when due (`due`, `recount`); while another process
        recounts, the counts as they are (None before the first recount ends)."""
        counts = self.counts()
        if self._due(counts, every=every):
            return self.recount(count_status) or counts
        return counts
