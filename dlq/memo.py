"""Values worth keeping in a process for a while: a queue's URL, a rule's targets, a
target's breaker read closed..."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """`compute()`'s answer per key, kept `ttl` seconds (None: for good); thread-safe.

    Two threads that miss at once may both compute: a memo saves repeated reads, it is
    not a lock. `fresh(value)` can shorten a value's life (a credential that expires) or
    keep a value from standing at all (a read of shared state not worth reusing: a
    target's breaker that is not clean). `forget(key)` drops the key's value at once (it
    stopped working, or this process changed what it reads), and a compute begun before
    it is not kept.
    """

    def __init__(
        self,
        ttl: float | None,
        *,
        fresh: Callable[[V], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._fresh = fresh
        self._clock = clock
        self._kept: dict[K, tuple[float, V]] = {}
        #: key -> how often it was forgotten: a compute that began before keeps nothing.
        self._forgets: dict[K, int] = {}
        self._lock = threading.Lock()

    def get(self, key: K, compute: Callable[[], V]) -> V:
        now = self._clock()
        with self._lock:
            kept = self._kept.get(key)
            forgets = self._forgets.get(key, 0)
        if kept is not None and self._still_good(kept, now):
            return kept[1]
        value = compute()
        with self._lock:
            if self._forgets.get(key, 0) == forgets:
                self._kept[key] = (now, value)
        return value

    def kept(self, key: K) -> V | None:
        """The key's value while it is still good; never computes."""
        now = self._clock()
        with self._lock:
            kept = self._kept.get(key)
        return kept[1] if kept is not None and self._still_good(kept, now) else None

    def forget(self, key: K) -> None:
        """Drop the key's value, so the next `get` computes it again."""
        with self._lock:
            self._kept.pop(key, None)
            self._forgets[key] = self._forgets.get(key, 0) + 1

    def _still_good(self, kept: tuple[float, V], now: float) -> bool:
        at, value = kept
        if self._ttl is not None and not 0 <= now - at < self._ttl:
            return False
        return self._fresh is None or self._fresh(value)
