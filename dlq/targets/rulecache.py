"""One kind of answer about rules, shared by the fleet in Redis: a rule's targets, its pattern.

An answer is read from EventBridge once per rule per TTL for the whole fleet, not once per
event; a rule found gone is cached too (as JSON `null`), so a backlog for a deleted rule
costs one call per period. Concurrent misses of one rule wait for whichever worker fills
it, and each process keeps what it read for a few seconds more.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis

from dlq.memo import Memo

T = TypeVar("T")

#: How long a worker waits for another worker's lookup of the same rule before its own.
FILL_WAIT_SECONDS = 5.0
#: How long a process keeps an answer to itself (at most half the fleet's TTL).
LOCAL_SECONDS = 5.0
#: How long the count of lookups is kept after the latest one.
LOOKUPS_TTL_SECONDS = 86400


@dataclass(frozen=True, slots=True)
class Keys:
    """Where one kind of answer lives in Redis."""

    cache: str
    fill: str
    #: A hash: per rule ARN, how many times the fleet asked EventBridge (operators, tests).
    lookups: str


class FleetCache(Generic[T]):
    """`fetch(rule_arn)`'s answer (None: the rule is gone), shared by the fleet."""

    def __init__(
        self,
        cache: redis.Redis,
        keys: Keys,
        *,
        ttl_seconds: float,
        fetch: Callable[[str], T | None],
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
    ) -> None:
        self._cache = cache
        self._keys = keys
        self._ttl = max(1, round(ttl_seconds))
        self._fetch = fetch
        self._encode = encode
        self._decode = decode
        self._local = threading.Lock()
        self._recent: Memo[str, T | None] = Memo(min(LOCAL_SECONDS, ttl_seconds / 2))

    def get(self, rule_arn: str) -> T | None:
        return self._recent.get(rule_arn, lambda: self._shared(rule_arn))

    def forget(self, rule_arn: str) -> None:
        self._recent.forget(rule_arn)
        self._cache.delete(self._keys.cache + rule_arn)

    def _shared(self, rule_arn: str) -> T | None:
        cached = self._cached(rule_arn)
        if cached is not None:
            return cached.value
        with self._local:  # one thread of this process asks; the others read its answer
            cached = self._cached(rule_arn)
            if cached is not None:
                return cached.value
            fill = self._keys.fill + rule_arn
            claimed = self._cache.set(fill, "1", nx=True, ex=30)
            if not claimed:
                cached = self._await_other_worker(rule_arn)
                if cached is not None:
                    return cached.value
            try:
                cached = self._cached(rule_arn)  # filled between our miss and our claim
                if cached is not None:
                    return cached.value
                pipe = self._cache.pipeline(transaction=False)
                pipe.hincrby(self._keys.lookups, rule_arn, 1)
                pipe.expire(self._keys.lookups, LOOKUPS_TTL_SECONDS)
                pipe.execute()
                value = self._fetch(rule_arn)
                document = None if value is None else self._encode(value)
                self._cache.set(self._keys.cache + rule_arn, json.dumps(document), ex=self._ttl)
            finally:
                if claimed:  # never release another worker's claim
                    self._cache.delete(fill)
            return value

    def _cached(self, rule_arn: str) -> _Cached[T] | None:
        raw = self._cache.get(self._keys.cache + rule_arn)
        if raw is None:
            return None
        document = json.loads(raw)
        return _Cached(None if document is None else self._decode(document))

    def _await_other_worker(self, rule_arn: str) -> _Cached[T] | None:
        deadline = time.monotonic() + FILL_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.05)
            cached = self._cached(rule_arn)
            if cached is not None:
                return cached
        return None


@dataclass(frozen=True, slots=True)
class _Cached(Generic[T]):
    """A cache hit: the answer, or None for a rule known to be gone."""

    value: T | None
