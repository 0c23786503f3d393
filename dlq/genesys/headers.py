"""What Genesys says in its response headers: the rate-limit budget and `Retry-After`.

`Retry-After` is read by `dlq.retryafter`, the parser targets share; it is re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from dlq.retryafter import parse_retry_after

__all__ = ["RateLimitInfo", "number", "parse_retry_after"]


@dataclass(frozen=True)
class RateLimitInfo:
    """The `inin-ratelimit-*` headers of a response: the server's view of our budget."""

    allowed: int | None
    count: int | None
    reset: float | None

    @property
    def remaining(self) -> int | None:
        """Calls left in the server's current window, when both numbers were sent."""
        if self.allowed is None or self.count is None:
            return None
        return max(self.allowed - self.count, 0)

    @property
    def exhausted(self) -> bool:
        """Whether the next call in this window would be refused with a 429."""
        return self.remaining == 0

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitInfo | None:
        """Read the headers; None when the response carried none of them."""
        allowed = number(headers.get("inin-ratelimit-allowed"))
        count = number(headers.get("inin-ratelimit-count"))
        reset = number(headers.get("inin-ratelimit-reset"))
        if allowed is None and count is None and reset is None:
            return None
        return cls(
            allowed=int(allowed) if allowed is not None else None,
            count=int(count) if count is not None else None,
            reset=reset,
        )


def number(value: str | None) -> float | None:
    """A finite, non-negative number from a header, else None."""
    try:
        parsed = float(value) if value is not None else None
    except ValueError:
        return None
    return parsed if parsed is not None and math.isfinite(parsed) and parsed >= 0 else None
