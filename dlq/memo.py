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
    not a lock. `fresh(value)` can shorten a value's life (a credential that expires).
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
        self._lock = threading.Lock()

    def get(self, key: K, compute: Callable[[], V]) -> V:
        now = self._clock()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and self._still_good(kept, now):
            return kept[1]
        value = compute()
        with self._lock:
            self._kept[key] = (now, value)
        return value

    def forget(self, key: K) -> None:
        """Drop a value that stopped working, so the next `get` computes it again."""
        with self._lock:
            self._kept.pop(key, None)

    def _still_good(self, kept: tuple[float, V], now: float) -> bool:
        at, value = kept
        if self._ttl is not None and now - at >= self._ttl:
            return False
        return self._fresh is None or self._fresh(value)


class RecentReads(Generic[K, V]):
    """The latest read of each key of a state shared through Redis, reused for `seconds`
    while `reusable(read)` says the read is worth reusing; thread-safe, one entry a key.

    For state whose common case (a target's breaker closed, no pace on a target) every
    call would otherwise read again: one read a key a second stands for the process's
    other calls. A read `reusable` refuses is not reused: the next call reads again. What
    other processes change is seen at most `seconds` late; what this process changes it
    says with `forget(key)`, which drops the key's read at once, and a read begun before
    it is not kept. Two threads that miss at once may both read.
    """

    def __init__(
        self, seconds: float, *, reusable: Callable[[V], bool], clock: Callable[[], float]
    ) -> None:
        self._seconds = seconds
        self._reusable = reusable
        self._clock = clock
        #: key -> (when read, the read if reusable, how often the key was forgotten)
        self._entries: dict[K, tuple[float, V | None, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, read: Callable[[], V]) -> V:
        """The key's recent reusable read, else `read()` (kept when reusable)."""
        now = self._clock()
        with self._lock:
            at, kept, forgets = self._entries.get(key, (now, None, 0))
        if kept is not None and 0 <= now - at < self._seconds:
            return kept
        value = read()
        with self._lock:
            if self._entries.get(key, (now, None, 0))[2] == forgets:
                self._entries[key] = (now, value if self._reusable(value) else None, forgets)
        return value

    def kept(self, key: K) -> V | None:
        """The key's reusable read, while it is recent enough; never reads."""
        now = self._clock()
        with self._lock:
            at, kept, _ = self._entries.get(key, (now, None, 0))
        return kept if kept is not None and 0 <= now - at < self._seconds else None

    def forget(self, key: K) -> None:
        """This process changed the key: its next `get` reads again."""
        with self._lock:
            forgets = self._entries.get(key, (0.0, None, 0))[2]
            self._entries[key] = (0.0, None, forgets + 1)
