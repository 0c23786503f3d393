"""`Retry-After`: how long a server asks us to wait, as seconds (RFC 9110 §10.2.3).

One parser for every caller: Genesys's 429 and 5xx answers (`dlq.genesys.responses`),
AWS services' throttling and HTTP targets (`dlq.targets`). It imports nothing of the
project, so targets read the header without importing the Genesys client.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

#: The longest wait honoured. Genesys windows are a minute and AWS hints seconds: an
#: answer beyond an hour is a broken clock or header, and obeying it would hold the whole
#: fleet (the Genesys limiter) or an event for hours. The caller's own backoff and age
#: budget still apply on top.
MAX_RETRY_AFTER_SECONDS = 3600.0

# delay-seconds is `1*DIGIT`; a fraction is tolerated, a sign, exponent, "inf" or "nan" not.
_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value: delay-seconds or an HTTP-date.

    A date in the past is 0; anything longer than `MAX_RETRY_AFTER_SECONDS` is capped to
    it. None when the value says nothing usable (absent, empty, negative, "inf", "nan",
    not a date): the caller then waits by its own backoff.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
