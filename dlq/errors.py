"""The error hierarchy, split by what the caller must do next.

- `RetryLater`: a transient condition; try again after `retry_after` seconds (or the
  retry policy's backoff when it is None).
- `GiveUp`: retrying cannot help; record the outcome and stop. `Rejected`, one of
  them: the event is outside the trust boundary; it ends `rejected`, nothing sent.
- `ConfigurationError`: an operator must fix a setting; retrying cannot help either.
- `HandOffError`: the ingest could not hand a message to the ledger or the broker;
  the message must stay in the queue.
"""

from __future__ import annotations


class DlqReplayError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigurationError(DlqReplayError):
    """A setting is missing or wrong; the message names the variable and what to do."""


class RetryLater(DlqReplayError):
    """A transient failure: the same call may succeed later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetWait(RetryLater):
    """A shared budget (a rate limit) asked us to wait: nothing was sent, no attempt spent."""


class GiveUp(DlqReplayError):
    """A permanent failure for this item: record it, do not retry."""


class Rejected(GiveUp):
    """The event is outside the trust boundary (`dlq.boundary`): the item ends `rejected`
    with `code` (`PatternMismatch`, `BusNotAllowed`...), and nothing is sent."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[object, ...]:
        # The keyword-only constructor would break pickling (Celery may pickle errors).
        return (_rejected, (type(self), str(self), self.code))


def _rejected(cls: type[Rejected], message: str, code: str) -> Rejected:
    return cls(message, code=code)


class HandOffError(DlqReplayError):
    """The ledger or the broker refused a DLQ message; leave it in the queue for later."""
