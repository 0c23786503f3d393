"""The Genesys call budget, shared by every process and host through Redis.

Genesys allows 300 requests a minute per client-credentials token
(`client.credentials.token.rate.per.minute`, Genesys Cloud developer center, "Limits",
https://developer.genesys.cloud/organization/organization/limits#platform-api), and
answers 429 with `Retry-After` beyond it; every response carries
`inin-ratelimit-allowed`, `-count` and `-reset` (developer center, "Rate limiting"
under Platform API). The scripts are in `lua/`.
"""

from __future__ import annotations

import enum
import math
import random

import redis

from dlq.genesys.fleet import client_key, lua


class Priority(enum.Enum):
    """Who is asking for a Genesys call: a redelivery (HIGH) or bookkeeping (LOW)."""

    HIGH = "high"
    LOW = "low"


class RateLimiter:
    """One Genesys call budget per OAuth client, shared by every process and host.

    `acquire()` never blocks: it either takes a slot and answers 0.0, or answers how many
    seconds to wait before asking again. Calls are paced evenly (GCRA) with a burst of
    `burst` at most. LOW callers are refused while the calls granted in the last `window`
    seconds leave less than `reserve` of the window's budget, so bookkeeping never takes
    the calls a redelivery needs. After a 429, `penalise()` holds everyone back.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        client_id: str,
        *,
        per_minute: int,
        reserve: float = 0.25,
        burst: int = 2,
        window: float = 60.0,
        jitter: bool = True,
    ) -> None:
        """`jitter` spreads refused callers over one interval, so they do not wake as a herd."""
        if per_minute <= 0 or burst < 1 or window <= 0 or not 0 <= reserve < 1:
            raise ValueError("per_minute > 0, burst >= 1, window > 0 and 0 <= reserve < 1")
        self._interval = 60.0 / per_minute
        self._tolerance = (burst - 1) * self._interval
        self._window = window
        # At least one LOW call per window, so bookkeeping always creeps forward.
        self._jitter = jitter
        self._low_ceiling = max(1, math.floor((1 - reserve) * per_minute * window / 60.0))
        base = f"dlq:ratelimit:{{{client_key(client_id)}}}"
        self._keys = [f"{base}:tat", f"{base}:log", f"{base}:blocked"]
        self._acquire = redis_client.register_script(lua("acquire"))
        self._penalise = redis_client.register_script(lua("penalise"))

    def acquire(self, priority: Priority = Priority.HIGH) -> float:
        """Take a slot (0.0) or learn how long to wait (seconds > 0); never sleeps."""
        args = [
            repr(self._interval),
            repr(self._tolerance),
            repr(self._window),
            str(self._low_ceiling),
            "1" if priority is Priority.LOW else "0",
        ]
        wait = float(self._acquire(keys=self._keys, args=args))
        if wait > 0 and self._jitter:
            # Every refused caller hears the same wait; without jitter they all retry at
            # the same instant and all but one are refused again.
            wait += random.uniform(0, self._interval)
        return wait

    def penalise(self, seconds: float) -> float:
        """Hold every caller back for `seconds` (a 429's wait); answers the wait now in force."""
        if seconds <= 0:
            return 0.0
        return float(self._penalise(keys=self._keys[2:], args=[repr(float(seconds))]))
