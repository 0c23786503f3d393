"""What AWS said about target ARNs, kept per process for a while.

A queue's URL, a state machine's type, an API destination's endpoint and connection, a
connection's authorization: each is read once and kept `FACTS_TTL_SECONDS`, so a drain
makes one describe call per target, not one per event. `forget(arn)` drops every fact
of an ARN at once: a send that finds one stale (a recreated queue, a rotated
credential), and an operator's redrive (the first attempt after it reads everything
again).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from dlq.memo import Memo

#: How long a fact is kept: a changed target or connection is seen within this long.
FACTS_TTL_SECONDS = 300.0

V = TypeVar("V")


class TargetFacts:
    """Facts by (ARN, name), one TTL, thread-safe; `forget(arn)` drops an ARN's every fact."""

    def __init__(
        self, ttl_seconds: float = FACTS_TTL_SECONDS, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._memo: Memo[tuple[str, str], Any] = Memo(ttl_seconds, clock=clock)
        self._names: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def get(self, arn: str, fact: str, compute: Callable[[], V]) -> V:
        """The fact `fact` about `arn`: kept, or `compute()`d and kept."""
        with self._lock:
            self._names.setdefault(arn, set()).add(fact)
        value: V = self._memo.get((arn, fact), compute)
        return value

    def forget(self, arn: str) -> None:
        """Drop every fact about `arn`: the next `get` asks AWS again."""
        with self._lock:
            names = self._names.pop(arn, set())
        for fact in names:
            self._memo.forget((arn, fact))
