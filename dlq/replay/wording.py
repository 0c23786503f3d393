"""What an exhausted item's last error says: the failure, and that no attempt is left.

A transient failure's message is written when it happens and says what the worker does
next ("...; retrying later", "retry later", "it is sent again after the backoff"): true
while the item is `retry_scheduled`. When the attempts or the age budget run out, that
promise is false, so the text of the final state keeps the failure, drops the promise and
says why the replay stopped.
"""

from __future__ import annotations

import re

#: A promise to try again, with what separates it from the failure before it and the
#: parenthesis that may explain it; only where the promise ends a clause.
_PROMISE = re.compile(
    r"\s*[;,.:]?\s*(?:retrying later(?: with the same Idempotency-Key)?|retry (?:later|shortly)"
    r"|it is sent again after the backoff)(?:\s*\([^)]*\))?(?=;|$)",
    re.IGNORECASE,
)


def without_promise(error: str) -> str:
    """`error` without its promise to try again ("…; retrying later" -> "…")."""
    return _PROMISE.sub("", error).strip()


def out_of_attempts(error: str | None, *, attempts: int) -> str:
    """The last error of an item whose attempts ran out (the workers' REPLAY_MAX_ATTEMPTS)."""
    verdict = (
        f"no attempts left after {attempts} (the workers' REPLAY_MAX_ATTEMPTS): not retried; "
        "redrive it once the cause is fixed"
    )
    return f"{without_promise(error)}; {verdict}" if error else verdict


def too_old(error: str | None) -> str:
    """The last error of an item older than its age budget (REPLAY_MAX_EVENT_AGE_SECONDS)."""
    verdict = (
        "older than REPLAY_MAX_EVENT_AGE_SECONDS: not retried (a redrive starts its age again)"
    )
    return f"{verdict}; the last error was: {without_promise(error)}" if error else verdict
