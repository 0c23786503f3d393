"""A pace shared by every process and host through Redis (GCRA, with priorities).

Its first user is the Genesys call budget: Genesys allows 300 requests a minute per
client-credentials token (`client.credentials.token.rate.per.minute`, Genesys Cloud
developer center, "Limits",
https://developer.genesys.cloud/organization/organization/limits#platform-api), and
answers 429 with `Retry-After` beyond it; every response carries
`inin-ratelimit-allowed`, `-count` and `-reset` (developer center, "Rate limiting"
under Platform API). API destinations' invocation rates use it too. The scripts are in
`lua/`.
"""

from __future__ import annotations

import enum
import logging
import random
import time

import redis

from dlq.fleet import digest, fleet_key, lua
from dlq.observe import NO_METRICS, MetricsObserver

log = logging.getLogger(__name__)


def key_prefix(name: str) -> str:
    """The prefix of the keys of the limiter of `name` (the braces keep them in one slot)."""
    return fleet_key("ratelimit", f"{{{digest(name)}}}")


def limiter_keys(name: str) -> list[str]:
    """The keys of the limiter of `name`: its state (a hash) and its log of grants.

    The state holds every scalar (`tat`, `blocked`, `allowance`, `allowance_until`,
    `high_until`, `low_turn`, and when it and the log expire: `kept_until`,
    `log_kept_until`), its times compared with Redis TIME instead of lapsing with TTLs,
    so an acquire reads it with one HMGET and writes it with one HSET (`lua/acquire.lua`).
    The log is a sorted set of granted calls (score: the grant's time).
    """
    base = key_prefix(name)
    return [f"{base}:state", f"{base}:log"]


#: Calls the pace lets through at once beyond its even spacing: in any span of `window`
#: seconds the fleet is granted at most its rate times the window plus this.
BURST = 2


class Priority(enum.Enum):
    """Who is asking: a redelivery (HIGH) or bookkeeping (LOW)."""

    HIGH = "high"
    LOW = "low"


class RateLimiter:
    """One pace per `name` (an OAuth client id, an API destination), shared by the fleet.

    `acquire()` never blocks: it either takes a slot and answers 0.0, or answers how many
    seconds to wait before asking again; it is one Redis round trip (one EVALSHA).

    The pace. Calls are paced evenly (GCRA) with a burst of `burst` at most, at the
    effective rate: `per_minute`, or what the server allows when that is lower. The
    client reports each response's `inin-ratelimit-allowed` (calls per `window`, Genesys's
    minute) with `note_server_allowance()`; the next `acquire()` stores it in Redis for
    the whole fleet, where it lives `allowance_ttl` seconds after the last report, so the
    configured rate comes back when the header stops coming. A lower allowance is followed
    less a margin (`burst` + 1 calls, or `server_margin` of the allowance if more); a
    higher one never raises the pace above `per_minute`. Each process logs once when the
    rate it is paced at changes.

    The turns. A refused LOW caller is told to come back at its turn: the first free slot
    after the turns already given, so a backlog of bookkeeping asks about once per slot
    instead of once per caller per slot. A turn books nothing (HIGH callers go first);
    a caller whose slot was taken meanwhile is given a later turn.

    The reserve. While a HIGH caller has asked in the last `high_hold` seconds, LOW
    callers are refused once the calls granted in the last `window` leave less than
    `reserve` of the window's budget, so bookkeeping never takes the calls a redelivery
    needs, and steps aside from the first HIGH request on. With no HIGH caller about, LOW
    callers may use the whole rate. After a 429, `penalise()` holds everyone back.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        name: str,
        *,
        label: str = "genesys budget",
        per_minute: int,
        reserve: float = 0.25,
        burst: int = BURST,
        window: float = 60.0,
        jitter: bool = True,
        high_hold: float = 5.0,
        server_margin: float = 0.03,
        allowance_ttl: float | None = None,
        metrics: MetricsObserver = NO_METRICS,
    ) -> None:
        """`jitter` spreads refused callers over one interval, so they do not wake as a herd.

        `name` is what is paced (only its digest reaches Redis); `label` starts this
        limiter's log lines. `allowance_ttl` defaults to five windows. `metrics` hears
        every answer.
        """
        self._metrics = metrics
        ttl = 5 * window if allowance_ttl is None else allowance_ttl
        if (
            per_minute <= 0
            or burst < 1
            or window <= 0
            or not 0 <= reserve < 1
            or high_hold <= 0
            or not 0 <= server_margin < 1
            or ttl <= 0
        ):
            raise ValueError(
                "per_minute > 0, burst >= 1, window > 0, 0 <= reserve < 1, high_hold > 0, "
                "0 <= server_margin < 1 and allowance_ttl > 0"
            )
        self._per_minute = per_minute
        self._label = label
        self._jitter = jitter
        self._allowance_ttl = ttl
        self._static_args = [
            str(per_minute),
            str(burst),
            repr(float(window)),
            repr(float(reserve)),
        ]
        self._hold_args = [repr(float(high_hold)), repr(float(server_margin))]
        #: The latest allowance a response reported, and when (monotonic), until an
        #: `acquire()` carries it to Redis.
        self._reported: tuple[int, float] | None = None
        self._effective = float(per_minute)
        self._window_arg = repr(float(window))
        self._keys = limiter_keys(name)
        self._acquire = redis_client.register_script(lua("acquire", package=__package__))
        self._penalise = redis_client.register_script(lua("penalise", package=__package__))

    @property
    def effective_per_minute(self) -> float:
        """The rate the latest `acquire()` was paced at (calls per minute)."""
        return self._effective

    def note_server_allowance(self, allowed: int | None) -> None:
        """Report a response's `inin-ratelimit-allowed`; None or < 1 (not a budget) is ignored.

        No Redis call: the next `acquire()` carries it, so reporting costs no round trip.
        """
        if allowed is None or allowed < 1:
            return
        self._reported = (allowed, time.monotonic())

    def acquire(self, priority: Priority = Priority.HIGH) -> float:
        """Take a slot (0.0) or learn how long to wait (seconds > 0); never sleeps."""
        # A report lost to a race between threads is harmless: the next response brings
        # another. A report older than its lifetime in Redis would only revive a stale one.
        reported, self._reported = self._reported, None
        allowance = ""
        if reported is not None and time.monotonic() - reported[1] < self._allowance_ttl:
            allowance = str(reported[0])
        args = [
            *self._static_args,
            "1" if priority is Priority.LOW else "0",
            *self._hold_args,
            allowance,
            repr(float(self._allowance_ttl)),
        ]
        raw_wait, raw_rate = self._acquire(keys=self._keys, args=args)
        wait, effective = float(raw_wait), float(raw_rate)
        self._note_rate(effective)
        self._metrics.budget(priority.value, granted=wait <= 0, pace_per_minute=effective)
        if wait > 0 and self._jitter and priority is Priority.HIGH:
            # Every refused HIGH caller hears the same wait; without jitter they all retry
            # at the same instant and all but one are refused again. LOW callers are given
            # turns one slot apart instead (lua/acquire.lua).
            wait += random.uniform(0, 60.0 / effective)
        return wait

    def penalise(self, seconds: float) -> float:
        """Hold every caller back for `seconds` (a 429's wait); answers the wait now in force."""
        if seconds <= 0:
            return 0.0
        args = [repr(float(seconds)), self._window_arg]
        return float(self._penalise(keys=self._keys[:1], args=args))

    def _note_rate(self, effective: float) -> None:
        if round(effective, 1) == round(self._effective, 1):
            return
        self._effective = effective
        if effective < self._per_minute:
            log.info(
                "%s: pacing at %.1f calls/min, below the configured %d, "
                "because the server allows less (inin-ratelimit-allowed)",
                self._label,
                effective,
                self._per_minute,
                extra={"effective_per_minute": effective, "configured": self._per_minute},
            )
        else:
            log.info(
                "%s: back to the configured %d calls/min",
                self._label,
                self._per_minute,
                extra={"effective_per_minute": effective, "configured": self._per_minute},
            )
