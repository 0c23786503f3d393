"""Redis-backed guards shared by every worker: the Genesys token cache and rate limiter.

Both are keyed by a digest of the OAuth client id (never the secret), so several
deployments can share one Redis, and every process of one deployment shares one
token and one budget.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis
from pydantic import SecretStr
from redis.exceptions import LockError, RedisError

from dlq.errors import RetryLater

log = logging.getLogger(__name__)


def client_key(client_id: str) -> str:
    """A stable, non-reversible name for an OAuth client, usable in Redis keys and logs."""
    return hashlib.sha256(client_id.encode()).hexdigest()[:32]


def _text(value: bytes | str) -> str:
    # The caller's Redis client may or may not decode responses.
    return value.decode() if isinstance(value, bytes) else value


class Priority(enum.Enum):
    """Who is asking for a Genesys call: a redelivery (HIGH) or bookkeeping (LOW)."""

    HIGH = "high"
    LOW = "low"


# ---------------------------------------------------------------------------------------
# Token cache


@dataclass(frozen=True, repr=False)
class IssuedToken:
    """An access token as the login host issued it, with its lifetime in seconds."""

    access_token: SecretStr
    expires_in: float

    def usable_for(self) -> float:
        """Seconds the token may be used: its lifetime less a margin for clocks and latency."""
        margin = min(300.0, self.expires_in * 0.1)
        return max(self.expires_in - margin, 0.0)

    def __repr__(self) -> str:
        return f"IssuedToken(access_token='**********', expires_in={self.expires_in})"


class TokenProvider(Protocol):
    """Where the client gets its bearer token, and reports one the API refused."""

    def get(self) -> SecretStr:
        """A token believed valid now; fetches a new one when there is none."""
        ...

    def invalidate(self, token: SecretStr) -> None:
        """Forget `token` if it is still the current one (the API answered 401 to it)."""
        ...


_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TokenCache:
    """One access token per OAuth client, shared through Redis, refreshed by one process.

    `get()` reads the shared token; when there is none, the process that wins a short
    redis-py `Lock` fetches it and the others poll until it appears, so a fleet restart
    makes one token request. When Redis is unreachable the process falls back to a
    token of its own, kept in memory.
    """

    def __init__(
        self,
        redis_client: redis.Redis | None,
        client_id: str,
        fetch: Callable[[], IssuedToken],
        *,
        lock_timeout: float = 30.0,
        wait_timeout: float = 30.0,
        poll_interval: float = 0.05,
        redis_retry_after: float = 5.0,
    ) -> None:
        """`lock_timeout` must outlast one token request (connect + read timeouts)."""
        self._redis = redis_client
        self._fetch = fetch
        self.key = f"dlq:genesys:token:{client_key(client_id)}"
        self._lock_key = f"{self.key}:refresh"
        self._lock_timeout = lock_timeout
        self._wait_timeout = wait_timeout
        self._poll_interval = poll_interval
        self._redis_retry_after = redis_retry_after
        self._redis_down_until = 0.0
        self._local: tuple[SecretStr, float] | None = None
        self._local_lock = threading.Lock()
        self._compare_and_delete = (
            redis_client.register_script(_COMPARE_AND_DELETE) if redis_client else None
        )

    def __repr__(self) -> str:
        return f"TokenCache(key={self.key!r})"

    def get(self) -> SecretStr:
        """The shared token, fetching it (once for the whole fleet) when there is none."""
        if self._redis is not None and time.monotonic() >= self._redis_down_until:
            try:
                return self._get_shared(self._redis)
            except RedisError as exc:
                # Redis down must not stop redelivery: each process fetches its own token.
                self._redis_down_until = time.monotonic() + self._redis_retry_after
                log.warning("token cache: Redis unreachable, using a per-process token: %s", exc)
        return self._get_local()

    def invalidate(self, token: SecretStr) -> None:
        """Drop `token` only if it is still current, so N callers seeing one 401 refresh once."""
        with self._local_lock:
            if self._local is not None and self._local[0] == token:
                self._local = None
        if self._compare_and_delete is None or time.monotonic() < self._redis_down_until:
            return
        try:
            self._compare_and_delete(keys=[self.key], args=[token.get_secret_value()])
        except RedisError as exc:
            self._redis_down_until = time.monotonic() + self._redis_retry_after
            log.warning("token cache: could not drop the refused token in Redis: %s", exc)

    def _get_shared(self, client: redis.Redis) -> SecretStr:
        deadline = time.monotonic() + self._wait_timeout
        lock = client.lock(self._lock_key, timeout=self._lock_timeout, blocking=False)
        while True:
            cached = client.get(self.key)
            if cached:
                return SecretStr(_text(cached))
            if lock.acquire(blocking=False):
                try:
                    # Double check: the previous holder may have stored it just now.
                    cached = client.get(self.key)
                    if cached:
                        return SecretStr(_text(cached))
                    issued = self._fetch()
                    self._remember_locally(issued)
                    ttl_ms = max(int(issued.usable_for() * 1000), 1)
                    client.set(self.key, issued.access_token.get_secret_value(), px=ttl_ms)
                    return issued.access_token
                finally:
                    # Expired while fetching: harmless, the token is stored either way.
                    with contextlib.suppress(LockError):
                        lock.release()
            if time.monotonic() >= deadline:
                raise RetryLater(
                    "another process has held the Genesys token refresh lock for "
                    f"{self._wait_timeout:.0f} s without storing a token; retry shortly",
                    retry_after=1.0,
                )
            time.sleep(self._poll_interval)

    def _get_local(self) -> SecretStr:
        with self._local_lock:
            if self._local is not None and time.monotonic() < self._local[1]:
                return self._local[0]
            issued = self._fetch()
            self._local = (issued.access_token, time.monotonic() + issued.usable_for())
            return issued.access_token

    def _remember_locally(self, issued: IssuedToken) -> None:
        # Only consulted if Redis fails later; saves a second fetch in that case.
        with self._local_lock:
            self._local = (issued.access_token, time.monotonic() + issued.usable_for())


# ---------------------------------------------------------------------------------------
# Rate limiter

# GCRA (a smooth token bucket) on Redis TIME, plus a sliding log of granted calls that
# tells LOW callers how much of the window's budget is already spent, plus a shared
# "blocked until" set after a 429. Answers the seconds to wait, as a string because Lua
# numbers come back from Redis as integers.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local blocked = tonumber(redis.call('GET', KEYS[3]) or '0')
if blocked > now then return string.format('%.6f', blocked - now) end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return string.format('%.6f', wait) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if ARGV[5] == '1' then
  local ceiling = tonumber(ARGV[4])
  local count = redis.call('ZCARD', KEYS[2])
  if count >= ceiling then
    local oldest = redis.call('ZRANGE', KEYS[2], count - ceiling, count - ceiling, 'WITHSCORES')
    return string.format('%.6f', math.max(tonumber(oldest[2]) + window - now, 0.001))
  end
end
local new_tat = string.format('%.6f', tat + interval)
local ttl = math.ceil((window + tolerance + interval) * 1000)
redis.call('SET', KEYS[1], new_tat, 'PX', ttl)
redis.call('ZADD', KEYS[2], now, new_tat)
redis.call('PEXPIRE', KEYS[2], ttl)
return '0'
"""

_PENALISE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local untl = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > current then
  local ttl = math.ceil(tonumber(ARGV[1]) * 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.6f', untl), 'PX', ttl)
end
return string.format('%.6f', math.max(untl, current) - now)
"""


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
        self._acquire = redis_client.register_script(_ACQUIRE)
        self._penalise = redis_client.register_script(_PENALISE)

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
