"""Errors of the Genesys Cloud client, split by what the caller must do next.

```
GenesysError                              status, code, correlation_id on every one
├── GenesysRetryable (RetryLater)         try again after `retry_after` (None: own backoff)
│   ├── RateLimitWait                     our own limiter said wait; no request was made
│   ├── GenesysRateLimited                the server answered 429
│   ├── GenesysServerError                5xx
│   ├── GenesysTimeout / GenesysConnectionError / GenesysBadResponse
│   └── GenesysUnauthorized               401 even with a freshly issued token
├── GenesysGiveUp (GiveUp)                retrying cannot help: record the outcome
│   ├── GenesysBadRequest (400)  GenesysForbidden (403)  GenesysNotFound (404)
│   │   └── BatchRefused          a 400 to the analytics multi-get: ask for fewer ids
│   ├── GenesysClientError                any other 4xx
│   └── InvalidRequest (also ValueError)  refused before any network I/O
└── GenesysCredentialsError (ConfigurationError)  the token endpoint refused the client
```

Every constructor argument after the message is keyword-only with a default, so the
errors survive pickling (Celery ships exceptions between processes).
"""

from __future__ import annotations

from dlq.errors import BudgetWait, ConfigurationError, DlqReplayError, GiveUp, RetryLater


class GenesysError(DlqReplayError):
    """Base of the client's errors: carries the HTTP status, Genesys code and correlation id."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.correlation_id = correlation_id


class GenesysRetryable(GenesysError, RetryLater):
    """A transient failure: the same call may succeed after `retry_after` seconds."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, correlation_id=correlation_id)
        self.retry_after = retry_after


class RateLimitWait(GenesysRetryable, BudgetWait):
    """The shared rate limiter asked us to wait: nothing was sent, no retry budget is spent."""


class GenesysRateLimited(GenesysRetryable):
    """Genesys answered 429 despite the limiter; the fleet now holds back until `retry_after`."""


class GenesysServerError(GenesysRetryable):
    """Genesys answered 5xx: an outage or a hiccup on their side."""


class GenesysTimeout(GenesysRetryable):
    """No answer within the connect or read timeout."""


class GenesysConnectionError(GenesysRetryable):
    """The host could not be reached (DNS, refused, reset, TLS)."""


class GenesysBadResponse(GenesysRetryable):
    """A success status with a body that is not what the API documents."""


class GenesysUnauthorized(GenesysRetryable):
    """401 even after one fresh token: the token is dropped; retry later with a new one."""


class GenesysGiveUp(GenesysError, GiveUp):
    """A permanent failure for this request: record the outcome, do not retry."""


class GenesysBadRequest(GenesysGiveUp):
    """400: Genesys refused the request as malformed."""


class BatchRefused(GenesysBadRequest):
    """400 to the analytics multi-get: most likely too many ids in one call; halve the batch."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
        size: int = 0,
    ) -> None:
        super().__init__(message, status=status, code=code, correlation_id=correlation_id)
        #: How many ids the refused call asked for.
        self.size = size


class GenesysForbidden(GenesysGiveUp):
    """403: the OAuth client's roles lack a permission (or a division hides the object)."""


class GenesysNotFound(GenesysGiveUp):
    """404: the conversation or participant does not exist (or is no longer readable)."""


class GenesysClientError(GenesysGiveUp):
    """Another 4xx (409, 410, 413...): permanent for this request."""


class InvalidRequest(GenesysGiveUp, ValueError):
    """The caller's input is unsafe or not what the API accepts; refused before any I/O."""


class GenesysCredentialsError(GenesysError, ConfigurationError):
    """The login host refused the client id/secret: an operator must fix the credentials."""
