"""AWS error codes by kind: which pass by themselves and which wait for an operator.

The table is in `dlq.awserrors`' docstring; `kind_of` applies it to one code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from botocore.exceptions import ClientError, ParamValidationError


class AwsErrorKind(StrEnum):
    """What an AWS error code means to the caller: see the table of `dlq.awserrors`."""

    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    BUSY = "busy"
    EXPIRED = "expired"
    BAD_CREDENTIALS = "bad credentials"
    ACCESS_DENIED = "access denied"
    KMS = "kms"
    MISSING = "missing"
    INVALID = "invalid"
    UNKNOWN = "unknown"

    @property
    def permanent(self) -> bool:
        """Whether the same call keeps failing until an operator acts."""
        return self in _PERMANENT


THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "AWS.SimpleQueueService.RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "PriorRequestNotComplete",
        "TransactionInProgressException",
        "EC2ThrottledException",
        "ExecutionLimitExceeded",
        "KMSThrottlingException",
        "KMSThrottling",
        "KmsThrottled",
        "KmsThrottlingException",
    }
)
UNAVAILABLE = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalFailureException",
        "InternalServerError",
        "InternalServerException",
        "ServiceException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "EC2UnexpectedException",
    }
)
#: Retryable whatever their HTTP status: a 4xx among them is a passing state of the target.
BUSY = frozenset(
    {
        "ResourceConflictException",
        "ResourceNotReadyException",
        "ENILimitReachedException",
        "SubnetIPAddressLimitReachedException",
        "EFSMountConnectivityException",
        "EFSMountTimeoutException",
        "SnapStartNotReadyException",
        "SnapStartTimeoutException",
    }
)
#: Retryable, although an operator may have to act: credentials from a role (instance
#: profile, ECS task role, IRSA, SSO) are refreshed by botocore before they expire, so a
#: long-lived worker or poller that meets one of these has a fresh token on its next call.
#: Stopping the poller (or giving up on an event) over a token that renews itself would
#: lose work for nothing; a static session token that stays expired shows up as the
#: same explained error on every retry, which is what tells the operator to refresh it.
#: `RequestExpired` is a signature that aged out (a slow call, a skewed clock): re-signed,
#: the next call carries a fresh timestamp.
EXPIRED = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
)
BAD_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "AuthorizationErrorException",
        "KMS.AccessDeniedException",
        "OptInRequired",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
    }
)
KMS = frozenset(
    {
        "KMSAccessDenied",
        "KMSAccessDeniedException",
        "KmsAccessDenied",
        "KmsAccessDeniedException",
        "KMSOptInRequired",
        "KmsOptInRequired",
    }
)
MISSING_QUEUE = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)
MISSING = MISSING_QUEUE | {
    "ResourceNotFoundException",
    "ResourceNotFound",
    "NotFound",
    "NotFoundException",
    "StateMachineDoesNotExist",
    "StateMachineDeleting",
    "EndpointDisabled",
}
INVALID = frozenset(
    {
        "ValidationException",
        "ValidationError",
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "InvalidParameterException",
        "InvalidParameterCombination",
        "MissingParameter",
        "InvalidRequestException",
        "InvalidRequestContentException",
        "SerializationException",
        "RequestTooLargeException",
        "RequestEntityTooLargeException",
    }
)

_KINDS = {
    AwsErrorKind.THROTTLED: THROTTLED,
    AwsErrorKind.UNAVAILABLE: UNAVAILABLE,
    AwsErrorKind.BUSY: BUSY,
    AwsErrorKind.EXPIRED: EXPIRED,
    AwsErrorKind.BAD_CREDENTIALS: BAD_CREDENTIALS,
    AwsErrorKind.ACCESS_DENIED: ACCESS_DENIED,
    AwsErrorKind.KMS: KMS,
    AwsErrorKind.MISSING: MISSING,
    AwsErrorKind.INVALID: INVALID,
}
#: Every known code and its kind.
VOCABULARY: Mapping[str, AwsErrorKind] = MappingProxyType(
    {code: kind for kind, codes in _KINDS.items() for code in codes}
)
_PERMANENT = frozenset(
    {
        AwsErrorKind.BAD_CREDENTIALS,
        AwsErrorKind.ACCESS_DENIED,
        AwsErrorKind.KMS,
        AwsErrorKind.MISSING,
        AwsErrorKind.INVALID,
    }
)


def kind_of(code: str, *, http_status: int | None = None) -> AwsErrorKind:
    """The kind of an AWS error code; an unknown code is judged by its name, then status."""
    known = VOCABULARY.get(code)
    if known is not None:
        return known
    if "Throttl" in code:
        return AwsErrorKind.THROTTLED
    if code.startswith("AccessDenied"):
        return AwsErrorKind.ACCESS_DENIED
    if code.startswith("KMS."):
        return AwsErrorKind.KMS
    if http_status == 403:
        return AwsErrorKind.ACCESS_DENIED
    if (http_status or 0) >= 500:
        return AwsErrorKind.UNAVAILABLE
    return AwsErrorKind.UNKNOWN


@dataclass(frozen=True)
class AwsError:
    """The code, message and operation of an AWS error response."""

    code: str
    message: str
    operation: str
    http_status: int | None = None

    @property
    def kind(self) -> AwsErrorKind:
        return kind_of(self.code, http_status=self.http_status)


_XML_CODE = re.compile(r"<Code>([^<]+)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def aws_error(exc: ClientError) -> AwsError:
    """The error's code and message, also when the endpoint answered XML to a JSON call.

    Emulators (moto's IAM enforcement) and some proxies answer a JSON-protocol call with
    an XML `ErrorResponse`; botocore then reports the HTTP status as the code.
    """
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "Unknown")
    message = str(error.get("Message") or "")
    if message.lstrip().startswith("<"):
        inner_code = _XML_CODE.search(message)
        inner_message = _XML_MESSAGE.search(message)
        code = inner_code.group(1) if inner_code else code
        message = inner_message.group(1) if inner_message else ""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return AwsError(code, message, exc.operation_name or "?", status)


def error_kind(exc: BaseException | None) -> AwsErrorKind | None:
    """The kind of an AWS error response (or of invalid call parameters); else None."""
    if isinstance(exc, ClientError):
        return aws_error(exc).kind
    if isinstance(exc, ParamValidationError):
        return AwsErrorKind.INVALID
    return None
