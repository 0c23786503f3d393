"""Targets' paces, shared by every process and host through Redis (strict GCRA, no burst).

A pace is what a target may receive: at most `rate` sends a second, fleet-wide. Unlike
the Genesys budget (`limiter`, which allows a small burst and counts Genesys's minute),
a target's pace holds in every second: two grants to one target are never closer than
one interval (1/rate, in whole microseconds rounded up), so no sliding second sees more
than ceil(rate) of them. The scripts are in `lua/` (`pace`, `hold`, `slots`).

Three things slow a target besides its configured rate: a temporary rate an operator
installs (a redrive's `--rate`, with its own expiry; the lower rate wins), a hold after
the target answered 429 with `Retry-After` (nobody sends to it until then), and a cap on
its sends in flight (`Slots`: a Lambda function's reserved concurrency).

A target with no rate (none configured, none of its kind's own) is granted at once unless
one of the first two is in force, and its sends need not ask Redis every time: when a
process found neither for it, that stands for its sends to it for
`UNPACED_REUSE_SECONDS` (1 s). A 429 hold set, or a
temporary rate installed, through this process's `Pace` is seen by it at once; set by
another process, it is seen here at most 1 s late (`redrive --rate` waits that long
before its first enqueue). A paced target asks Redis on every send.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import redis

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.fleet import lua
from dlq.memo import Memo
from dlq.ratelimit.limiter import key_prefix

#: How long a process's finding that a target has neither a temporary rate nor a 429 hold
#: stands for its sends to it when no rate is configured for it.
UNPACED_REUSE_SECONDS = 1.0


def pace_prefix(target: str) -> str:
    """The prefix of the keys of `target`'s pace (one hash slot, the target's digest)."""
    return key_prefix(f"pace:{target}")


def most_in_a_second(rate: float) -> int:
    """The most grants a pace of `rate` a second lets into any sliding second: ceil(rate)."""
    if rate <= 0:
        raise ValueError("a pace's rate is above 0")
    return max(1, math.ceil(rate - 1e-9))


@dataclass(frozen=True, slots=True)
class Grant:
    """A pace's answer: a slot (`wait` 0) at `at` (Redis time, epoch seconds), or a wait."""

    wait: float
    #: When the slot was granted, by Redis's clock (None when refused, or unpaced).
    at: float | None
    #: The rate applied (sends a second); None when the target has no pace.
    rate: float | None

    @property
    def granted(self) -> bool:
        return self.wait <= 0

    @property
    def unpaced(self) -> bool:
        """Granted with no rate applied: the target had neither a temporary rate nor a hold."""
        return self.granted and self.rate is None


class Pace:
    """The paces of every target, one Redis round trip per question; never sleeps.

    One per process (the worker's `Redeliverer` holds it): its threads share what it
    found of the targets without a rate (`UNPACED_REUSE_SECONDS`).
    """

    def __init__(self, redis_client: redis.Redis, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._redis = redis_client
        self._acquire = redis_client.register_script(lua("pace", package=__package__))
        self._hold = redis_client.register_script(lua("hold", package=__package__))
        self._unpaced: Memo[str, Grant] = Memo(
            UNPACED_REUSE_SECONDS, fresh=lambda grant: grant.unpaced, clock=clock.now
        )

    def acquire(self, target: str, *, rate: float | None) -> Grant:
        """A slot of `target`'s pace at `rate` (or the lower temporary rate), or the wait.

        A target with no rate and no temporary one is granted at once, unless it is held;
        with no `rate`, a recent finding of this process that it had neither stands for
        the script (`UNPACED_REUSE_SECONDS`).
        """
        if rate is not None and rate > 0:
            return self._ask(target, rate)
        return self._unpaced.get(target, lambda: self._ask(target, None))

    def _ask(self, target: str, rate: float | None) -> Grant:
        base = pace_prefix(target)
        keys = [f"{base}:tat", f"{base}:held", f"{base}:temporary"]
        wait, at, applied = self._acquire(keys=keys, args=[repr(float(rate or 0.0))])
        seconds, micros, per_second = float(wait), int(at), float(applied)
        return Grant(
            wait=seconds,
            at=micros / 1_000_000 if seconds <= 0 and micros else None,
            rate=per_second if per_second > 0 else None,
        )

    def hold(self, target: str, seconds: float) -> float:
        """Nobody sends to `target` for `seconds` (a 429's Retry-After); answers the hold in
        force, which a shorter one never shortens."""
        if seconds <= 0:
            return 0.0
        keys = [f"{pace_prefix(target)}:held"]
        try:
            return float(self._hold(keys=keys, args=[repr(float(seconds))]))
        finally:
            self._unpaced.forget(target)

    def set_temporary(self, target: str, rate: float, *, seconds: float) -> None:
        """Pace `target` at most `rate` a second for the next `seconds` (a redrive's
        `--rate`), on top of its own rate: the lower applies."""
        if rate <= 0 or seconds <= 0:
            raise ValueError("a temporary pace needs a rate and a lifetime above 0")
        key = f"{pace_prefix(target)}:temporary"
        try:
            self._redis.set(key, repr(float(rate)), px=math.ceil(seconds * 1000))
        finally:
            self._unpaced.forget(target)

    def temporary(self, target: str) -> float | None:
        """The temporary rate installed for `target`, if one is in force."""
        raw = self._redis.get(f"{pace_prefix(target)}:temporary")
        return float(raw) if raw is not None else None


class Slots:
    """At most `limit` sends in flight to a target across the fleet, each on a lease."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self._take = redis_client.register_script(lua("slots", package=__package__))
        self._redis = redis_client

    def take(self, target: str, *, limit: int, lease_seconds: float) -> tuple[str | None, float]:
        """(a token to `give_back`, 0.0), or (None, seconds until a lease may end)."""
        token = uuid.uuid4().hex
        args = [str(limit), token, str(math.ceil(lease_seconds * 1000))]
        taken, wait = self._take(keys=[f"{pace_prefix(target)}:inflight"], args=args)
        if int(taken) == 1:
            return token, 0.0
        return None, max(float(wait or 1.0), 0.001)

    def give_back(self, target: str, token: str) -> None:
        """Free the slot `token` holds (a lease that ran out is freed already)."""
        self._redis.zrem(f"{pace_prefix(target)}:inflight", token)
