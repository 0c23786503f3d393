"""How many moments of a record fall in its busiest sliding window: the property a pace
promises, counted over what was recorded (grant times, arrivals at a target)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable


def busiest_window(moments: Iterable[float], *, width: float = 1.0) -> int:
    """The most moments in any window [t, t + width) that starts at a recorded moment t
    (the busiest window of any start begins at one of them)."""
    ordered = sorted(moments)
    return max(
        (bisect_left(ordered, start + width) - index for index, start in enumerate(ordered)),
        default=0,
    )
