"""How much of a limiter's pace the fleet is using (the Genesys budget's, for `status`).

Read-only: it looks at the keys `RateLimiter` keeps (the sliding log of granted calls;
in its state, the server's reported allowance and the hold after a 429) and takes
nothing. The effective rate is worked out as `lua/acquire.lua` does, so "used" is
measured against the pace the fleet is actually held to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis

from dlq.ratelimit.limiter import BURST, limiter_keys


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """The budget in the last window: calls granted against the calls the pace allows."""

    granted: int
    #: Calls per window the fleet is paced at: the configured rate, or the server's
    #: allowance less its margin when that is lower.
    allowed: float
    configured_per_minute: int
    #: The latest `inin-ratelimit-allowed` a response reported (None: none lately).
    server_allowance: int | None
    #: Seconds every caller is still held back after a 429 (0: no hold).
    held_for: float
    window: float

    @property
    def share(self) -> float:
        """Granted calls as a share of the window's allowed calls (0..1, can pass 1 briefly)."""
        return self.granted / self.allowed if self.allowed > 0 else 0.0


def read_budget(
    client: redis.Redis,
    client_id: str,
    *,
    per_minute: int,
    window: float = 60.0,
    burst: int = BURST,
    server_margin: float = 0.03,
) -> BudgetUse:
    """The fleet's use of the budget of `client_id`, as the limiter sees it now."""
    state, granted_log = limiter_keys(client_id)
    seconds, micros = client.time()
    now = seconds + micros / 1_000_000
    pipe = client.pipeline(transaction=False)
    pipe.zcount(granted_log, f"({now - window:.6f}", "+inf")
    pipe.hmget(state, ["allowance", "allowance_until", "blocked"])
    granted, (raw_allowance, raw_until, raw_blocked) = pipe.execute()
    rate = per_minute / 60
    allowance = _number(raw_allowance)
    if (_number(raw_until) or 0.0) <= now:
        allowance = None  # the reports stopped: the configured rate is back
    if allowance is not None and allowance >= 1:
        margin = max(burst + 1, math.ceil(allowance * server_margin))
        rate = min(rate, max(allowance - margin, 1) / window)
    blocked = _number(raw_blocked) or 0.0
    return BudgetUse(
        granted=int(granted),
        allowed=rate * window,
        configured_per_minute=per_minute,
        server_allowance=int(allowance) if allowance is not None and allowance >= 1 else None,
        held_for=max(0.0, blocked - now),
        window=window,
    )


def _number(raw: bytes | str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None
