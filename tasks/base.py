"""What every dlq task shares: bounded countdowns and waiting without spending retries."""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.exceptions import Ignore

from dlq.ledger import StaleClaim
from dlq.replay import AttemptFailed
from dlq.retry import cap_countdown

WAIT_FLOOR_SECONDS = 0.5


class BoundedTask(Task):  # type: ignore[misc]
    """A task whose every countdown stays below the broker's visibility timeout.

    Celery's autoretry computes the backoff (`retry_backoff`, `retry_jitter`) and calls
    `retry`; this is where that delay is capped, stretched to a server's `Retry-After`,
    and recorded in the ledger before the retry is scheduled.
    """

    def retry(self, *args: Any, exc: BaseException | None = None, **options: Any) -> Any:
        countdown = options.get("countdown")
        if countdown is None and options.get("eta") is None:
            countdown = self.default_retry_delay
        if countdown is not None:
            server_wait = getattr(exc, "retry_after", None) or 0.0
            countdown = cap_countdown(max(float(countdown), float(server_wait)))
            options["countdown"] = countdown
        if isinstance(exc, AttemptFailed):
            try:
                exc.schedule(countdown or 0.0)
            except StaleClaim:
                # Another worker took the item over while this one failed: no retry here.
                raise Ignore() from None
        return super().retry(*args, exc=exc, **options)

    def wait(self, seconds: float | None) -> str:
        """Come back in `seconds` without using up a retry (lock busy, budget says wait).

        Waits are floored: a refused caller asking again within milliseconds would only
        churn the broker and the limiter.
        """
        delay = cap_countdown(max(seconds or 0.0, WAIT_FLOOR_SECONDS))
        self.signature_from_request(countdown=delay).apply_async()
        return "waiting"
