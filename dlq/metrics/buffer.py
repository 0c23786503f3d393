"""How counts reach Redis: summed in process and written together (`CountBuffer`), or
written as they come (`DirectCounts`). Both are a `CountSink`, the one thing the status
tally and the outcome counters write to.

Every replayed event moves the status tally twice (`received` +1 at the ingest, -1 at the
claim) and counts an outcome once: three HINCRBYs an event when each is sent as it
happens. A long-running process (a worker, the poller) instead adds them here, and a
daemon thread sends what was added every `FLUSH_SECONDS` as one pipeline of summed
HINCRBYs, one per distinct (key, field), none for a field whose moves cancelled out. A
busy process then sends a few commands a flush whatever its rate. The flushes of every
process fall on the same instants, and a decrement waits one more (`tick`): the claim's
-1 lands after the ingest's +1 that another process counted (the poller, or a Lambda
invocation shorter than a turn), and `received` does not dip below zero on the way
(which would make the sampler recount the table).

What that costs: the counts in Redis lag the ledger by an interval (a decrement, two),
and a process that dies (SIGKILL, a lost container) loses what it had not flushed. Both
counts already accept that: the status tally drifts as little and is set right by its
periodic recount (`dlq.metrics.tally`), and an outcome count lost to Redis was already
logged and left. The processes flush as they stop (`close`: the worker's shutdown
signals, the poller's end, `atexit`), and the Lambda handler flushes at the end of each
invocation, so nothing waits in a frozen container. Short-lived commands (`redrive`,
`resolve`...) write through `DirectCounts` instead: `status` right after them is exact.

A flush Redis refuses keeps its counts for the next one (up to `MAX_PENDING_FIELDS`
distinct fields; beyond, they are dropped and the drop is logged), and never raises into
its callers: the ledger write a count follows stands whatever Redis says.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import redis

from dlq.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

#: How often the flusher writes what was added: short next to anything that reads these
#: counts (`status`, a sample every 60 s, a per-minute bucket), long next to the few
#: milliseconds an event takes, so a flush carries many events' counts.
FLUSH_SECONDS = 0.5
#: Distinct fields kept while Redis refuses the flushes (a few MB at most): hours of
#: per-minute outcome buckets for a handful of targets and codes. Beyond, a refused
#: flush's fields that do not already wait are dropped (logged).
MAX_PENDING_FIELDS = 10_000
#: A warning a minute at most while Redis refuses the flushes.
WARN_EVERY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Expiry:
    """A hash whose fields are created by counts: EXPIRE it, `seconds`, when a flush
    creates one of its fields (the HINCRBY answers the increment it sent)."""

    seconds: int


class CountSink(Protocol):
    """Where counts go. Never raises: the ledger write a count follows stands whatever
    Redis says."""

    def add(self, key: str, deltas: Mapping[str, int], *, expiry: Expiry | None = None) -> None:
        """Count each field's delta into the hash `key` (`expiry`: see `Expiry`)."""


class DirectCounts:
    """Counts written as they are added, one pipeline a call (the short-lived commands).

    A call Redis refuses is lost, logged at `level` once a minute at most with what it
    means (`consequence`), never raised."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        consequence: str,
        level: int = logging.WARNING,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._redis = client
        self._consequence = consequence
        self._level = level
        self._clock = clock
        self._warned_at = -WARN_EVERY_SECONDS

    def add(self, key: str, deltas: Mapping[str, int], *, expiry: Expiry | None = None) -> None:
        sent = {name: delta for name, delta in deltas.items() if delta}
        if not sent:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for name, delta in sent.items():
                pipe.hincrby(key, name, delta)
            answers = pipe.execute()
            # Not once per key and process: a hash a Redis restart emptied would be left
            # without an expiry for good.
            if expiry is not None and any(
                answer == delta for answer, delta in zip(answers, sent.values(), strict=True)
            ):
                self._redis.expire(key, expiry.seconds)
        except redis.RedisError as exc:
            now = self._clock.now()
            if now - self._warned_at >= WARN_EVERY_SECONDS:
                self._warned_at = now
                log.log(
                    self._level,
                    f"could not write {len(sent)} counts to {key} in Redis ({exc}): "
                    f"{self._consequence}",
                )


class CountBuffer:
    """HINCRBY deltas summed by (key, field), written by `flush` (thread-safe); a
    `CountSink` for the long-running processes."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        interval: float = FLUSH_SECONDS,
        max_fields: int = MAX_PENDING_FIELDS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._redis = client
        self._interval = interval
        self._max_fields = max_fields
        self._clock = clock
        self._lock = threading.Lock()
        # One flush at a time: what a refused flush keeps goes back before the next takes.
        self._flushing = threading.Lock()
        self._pending: dict[tuple[str, str], int] = {}
        # Decrements a turn of the flusher holds for the next (`tick`).
        self._held: dict[tuple[str, str], int] = {}
        self._expiries: dict[str, Expiry] = {}
        # Keys whose field a flush created but whose EXPIRE Redis then refused.
        self._unexpired: dict[str, Expiry] = {}
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_at = -WARN_EVERY_SECONDS

    def add(self, key: str, deltas: Mapping[str, int], *, expiry: Expiry | None = None) -> None:
        """Count each field's delta into the hash `key` at the next flush (at once once
        closed: a count that comes after the last flush is not left behind)."""
        with self._lock:
            for name, delta in deltas.items():
                self._pending[(key, name)] = self._pending.get((key, name), 0) + delta
            if expiry is not None:
                self._expiries[key] = expiry
        if self._stopped.is_set():
            self.flush()

    def pending(self) -> dict[tuple[str, str], int]:
        """What waits to be written, by (key, field) (a copy)."""
        with self._lock:
            waiting = dict(self._held)
            for name, delta in self._pending.items():
                waiting[name] = waiting.get(name, 0) + delta
        return {k: d for k, d in waiting.items() if d}

    def flush(self) -> bool:
        """Send everything that waits (one pipeline, plus the EXPIREs of the hashes it
        created fields in); whether Redis took it all. Never raises a Redis error."""
        return self._send(hold_decrements=False)

    def tick(self) -> bool:
        """One turn of the flusher: `flush`, except that a field's decrement added since
        the last turn waits for the next one.

        A decrement undoes an increment another process may still hold: the claim's
        `received` -1 (a worker) follows the ingest's +1 (the poller, a Lambda invocation
        that flushes as it ends). Sent a turn later, it lands after that +1, and the count
        does not dip below zero, which would make the sampler recount the table.
        """
        return self._send(hold_decrements=True)

    def _send(self, *, hold_decrements: bool) -> bool:
        with self._flushing:
            with self._lock:
                taken, self._pending = self._pending, {}
                expiries, self._expiries = self._expiries, {}
                held, self._held = self._held, {}
                if hold_decrements:
                    self._held = {f: d for f, d in taken.items() if d < 0}
                    taken = {f: d for f, d in taken.items() if d > 0}
            for name, delta in held.items():
                taken[name] = taken.get(name, 0) + delta
            sent = [(key, field, delta) for (key, field), delta in taken.items() if delta]
            if not sent and not self._unexpired:
                return True
            try:
                pipe = self._redis.pipeline(transaction=False)
                for key, field, delta in sent:
                    pipe.hincrby(key, field, delta)
                answers = pipe.execute(raise_on_error=False) if sent else []
            except redis.RedisError as exc:
                self._keep(sent, expiries, exc)
                return False
            refused = [a for a in answers if isinstance(a, Exception)]
            if refused:
                # A command Redis answers with an error (a key of another type) would be
                # refused again: dropped, not kept.
                self._refused(
                    f"dropped the counts of {len(refused)} fields Redis refused ({refused[0]})"
                )
            created = {
                key: expiries[key]
                for (key, _, delta), answer in zip(sent, answers, strict=True)
                if key in expiries and answer == delta
            }
            return self._expire({**self._unexpired, **created}) and not refused

    def _expire(self, keys: dict[str, Expiry]) -> bool:
        if not keys:
            return True
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key, expiry in keys.items():
                pipe.expire(key, expiry.seconds)
            pipe.execute()
        except redis.RedisError as exc:
            self._unexpired = keys
            self._refused(f"could not set the expiry of {len(keys)} count hashes ({exc})")
            return False
        self._unexpired = {}
        return True

    def _keep(
        self, sent: list[tuple[str, str, int]], expiries: dict[str, Expiry], exc: Exception
    ) -> None:
        """Put a refused flush's counts back for the next one, as far as the bound allows."""
        dropped = 0
        with self._lock:
            for key, field, delta in sent:
                if (key, field) in self._pending or len(self._pending) < self._max_fields:
                    self._pending[(key, field)] = self._pending.get((key, field), 0) + delta
                else:
                    dropped += 1
            for key, expiry in expiries.items():
                self._expiries.setdefault(key, expiry)
        kept = f"{len(sent) - dropped} kept for the next flush"
        lost = f", {dropped} dropped (over {self._max_fields} fields waiting)" if dropped else ""
        self._refused(
            f"could not write the counts of {len(sent)} fields to Redis ({exc}): {kept}{lost}; "
            "the status counts drift until the next recount, and status undercounts outcomes "
            "meanwhile"
        )

    def _refused(self, text: str) -> None:
        now = self._clock.now()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning(text)

    # --- the flusher (long-running processes) -----------------------------------------

    def start(self) -> CountBuffer:
        """Flush (`tick`) every `interval` seconds from a daemon thread, and at exit;
        answers self.

        The turns fall on the multiples of `interval` on the clock, the same instants in
        every process (to the machines' clock skew), so counts that one process makes and
        another undoes land in the order they were made.
        """
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="count-flusher", daemon=True)
            self._thread.start()
            atexit.register(self.close)
        return self

    def _run(self) -> None:
        while not self._stopped.wait(self._interval - self._clock.now() % self._interval):
            try:
                self.tick()
            except Exception:
                log.exception("the count flusher failed; it flushes again next interval")

    def close(self) -> None:
        """Stop the flusher and flush what is left (the process is stopping)."""
        self._stopped.set()
        if self._thread is not None:
            atexit.unregister(self.close)
        self.flush()
