"""What went wrong when redelivering to a target, split by what the worker must do next.

| class | base | raised when |
| --- | --- | --- |
| `TargetThrottled` | RetryLater | the target or its service throttled the call (429, SlowDown) |
| `TargetUnavailable` | RetryLater | 5xx, timeout, no connection, 408/425, busy, expired token |
| `TargetFailed` | RetryLater | the target ran and failed (a Lambda `FunctionError`) |
| `TargetMissing` | GiveUp | the queue, topic, function, stream, bus or state machine is gone |
| `TargetForbidden` | GiveUp | this service may not call the target (AccessDenied*, bad keys, KMS) |
| `TargetRejected` | GiveUp | the target refused this event (invalid, too large, any other 4xx) |
| `UnsupportedTarget` | GiveUp | the ARN is not a kind of target this service can call |
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from dlq.awserrors import AwsErrorKind, kind_of
from dlq.errors import ConfigurationError, DlqReplayError, GiveUp, RetryLater
from dlq.redact import scrub
from dlq.retryafter import parse_retry_after


class TargetError(DlqReplayError):
    """Base of every redelivery failure: names the target and the error code it answered.

    `target_arn` is where the delivery failed: the override's destination when
    REPLAY_TARGET_OVERRIDES routed the event elsewhere. `code` is the AWS error code,
    `HTTP<status>`, or the name of the transport failure.
    """

    target_arn: str
    code: str

    def __reduce__(self) -> tuple[Any, ...]:
        # The keyword-only constructors would break pickling (Celery may pickle errors).
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


def _rebuild(cls: type[TargetError], message: str, state: dict[str, Any]) -> TargetError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class TargetRetryable(TargetError, RetryLater):
    """A redelivery failure that may pass later; `retry_after` is the target's hint, if any."""

    def __init__(
        self, message: str, *, target_arn: str, code: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.target_arn = target_arn
        self.code = code


class TargetFatal(TargetError, GiveUp):
    """A redelivery failure that retrying cannot fix."""

    def __init__(self, message: str, *, target_arn: str, code: str) -> None:
        super().__init__(message)
        self.target_arn = target_arn
        self.code = code


class TargetThrottled(TargetRetryable):
    """The target or its service throttled the call."""


class TargetUnavailable(TargetRetryable):
    """The target's service could not be reached or failed on its side."""


class TargetFailed(TargetRetryable):
    """The target received the event and failed processing it."""


class TargetMissing(TargetFatal):
    """The target does not exist (any more)."""


class TargetForbidden(TargetFatal):
    """This service is not allowed to deliver to the target."""


class TargetRejected(TargetFatal):
    """The target refused the event itself."""


class UnsupportedTarget(TargetFatal):
    """The ARN names a kind of target this service cannot redeliver to."""


def classify(
    target_arn: str,
    code: str,
    message: str,
    *,
    status: int | None = None,
    retry_after: float | None = None,
) -> TargetError:
    """The error to raise for `code` (an AWS error code) answered by the target.

    The code's kind comes from `dlq.awserrors`, the vocabulary doctor and the poller use.
    A code it does not know is judged by its HTTP status: a 4xx is the caller's fault and
    will not pass, anything else (5xx, no status) may. The service's message is scrubbed
    (`dlq.redact`): it is the one text of the answer an error quotes.
    """
    message = scrub(message)
    said = f"{target_arn} answered {code}: {message}" if message else f"{target_arn}: {code}"
    kind = kind_of(code, http_status=status)
    if kind is AwsErrorKind.THROTTLED:
        return TargetThrottled(
            f"{said}; throttled, retrying later",
            target_arn=target_arn,
            code=code,
            retry_after=retry_after,
        )
    if kind in _RETRYABLE:
        return TargetUnavailable(
            f"{said}; {_RETRYABLE[kind]}, retrying later",
            target_arn=target_arn,
            code=code,
            retry_after=retry_after,
        )
    if kind is AwsErrorKind.MISSING:
        return TargetMissing(
            f"{said}; the target does not exist: recreate it or route the event elsewhere "
            "(REPLAY_TARGET_OVERRIDES on the replay workers; restart them with it), then redrive",
            target_arn=target_arn,
            code=code,
        )
    if kind in _FORBIDDEN:
        return TargetForbidden(
            f"{said}; not allowed: grant the replay role permission on the target "
            "(and its KMS key), then redrive",
            target_arn=target_arn,
            code=code,
        )
    if kind is AwsErrorKind.INVALID or (status is not None and 400 <= status < 500):
        http = f" (HTTP {status})" if status is not None else ""
        return TargetRejected(
            f"{said}; the target refused the event{http}: fix the target or the event, "
            "then redrive",
            target_arn=target_arn,
            code=code,
        )
    return TargetUnavailable(
        f"{said}; retrying later",
        target_arn=target_arn,
        code=code,
        retry_after=retry_after,
    )


#: Retryable kinds other than throttling, with what the worker says of them.
_RETRYABLE = {
    AwsErrorKind.UNAVAILABLE: "the service failed on its side",
    AwsErrorKind.BUSY: "the target is busy or not ready",
    AwsErrorKind.EXPIRED: "the worker's AWS credentials expired (they renew)",
}
_FORBIDDEN = frozenset({AwsErrorKind.ACCESS_DENIED, AwsErrorKind.BAD_CREDENTIALS, AwsErrorKind.KMS})


def from_client_error(target_arn: str, error: ClientError) -> TargetError:
    """The `TargetError` for a boto3 `ClientError`, with the service's Retry-After if sent."""
    response: dict[str, Any] = error.response
    details = response.get("Error", {})
    metadata = response.get("ResponseMetadata", {})
    headers = metadata.get("HTTPHeaders", {})
    return classify(
        target_arn,
        str(details.get("Code") or "Unknown"),
        str(details.get("Message") or ""),
        status=metadata.get("HTTPStatusCode"),
        retry_after=parse_retry_after(headers.get("retry-after")),
    )


def from_botocore_error(target_arn: str, error: BotoCoreError) -> DlqReplayError:
    """The error for a failure before any answer: connection, timeout, bad parameters."""
    name = type(error).__name__
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return ConfigurationError(
            f"no usable AWS credentials to call {target_arn}: {error}; configure the worker's "
            "role or AWS_* credentials"
        )
    if isinstance(error, ParamValidationError):
        return TargetRejected(
            f"the call to {target_arn} is invalid: {error}",
            target_arn=target_arn,
            code=name,
        )
    if isinstance(error, ReadTimeoutError):
        return TargetUnavailable(
            f"no answer from {target_arn} in time ({error}); the call may still have been "
            "delivered, retrying later",
            target_arn=target_arn,
            code=name,
        )
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
        return TargetUnavailable(
            f"could not reach {target_arn}: {error}; retrying later",
            target_arn=target_arn,
            code=name,
        )
    return TargetUnavailable(
        f"calling {target_arn} failed: {error}; retrying later", target_arn=target_arn, code=name
    )


#: The shared `Retry-After` parser (`dlq.retryafter`) under the name targets import it by.
retry_after_seconds = parse_retry_after
