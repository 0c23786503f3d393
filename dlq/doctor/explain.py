"""What an AWS or Redis failure means to an operator: one line naming cause and fix.

The CLI prints these lines, `doctor` puts them in its table, and the poller asks
`permanent` whether to stop or to try again later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from redis.exceptions import AuthenticationError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "AWS.SimpleQueueService.RequestThrottled",
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
    }
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
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
    }
)
MISSING_QUEUE = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
SERVER_ERRORS = frozenset(
    {"InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable"}
)
#: DynamoDB operations: a ResourceNotFoundException from one of them is a missing table.
DYNAMODB_OPERATIONS = frozenset(
    {
        "DescribeTable",
        "DescribeTimeToLive",
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
        "UpdateTimeToLive",
    }
)

_DENIED = re.compile(
    r"perform:\s*(?P<action>[A-Za-z0-9-]+:[A-Za-z0-9*]+)"
    r"(?:\s+on resource:\s*(?P<resource>[^\s,]+))?"
)
_PRINCIPAL = re.compile(r"User:\s*(?P<principal>\S+)\s+is not authorized")
_XML_CODE = re.compile(r"<Code>([^<]+)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


@dataclass(frozen=True)
class Explanation:
    """A failure: what happened, what to do, and what kind of failure it is.

    `configuration`: an operator must change something (credentials, a setting, IAM).
    `permanent`: repeating the same call cannot succeed until then.
    """

    cause: str
    fix: str
    configuration: bool = False
    permanent: bool = False

    @property
    def text(self) -> str:
        """The one line: `cause: fix`."""
        return f"{self.cause}: {self.fix}"


@dataclass(frozen=True)
class AwsError:
    """The code, message and operation of an AWS error response."""

    code: str
    message: str
    operation: str
    http_status: int | None = None


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


def explain_aws(exc: BotoCoreError | ClientError) -> Explanation:
    """What an AWS failure means: what happened and what to do."""
    if isinstance(exc, ClientError):
        return _client_error(aws_error(exc))
    if isinstance(exc, NoCredentialsError):
        return Explanation(
            "no AWS credentials found",
            "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role "
            "(instance profile, ECS task role, IRSA)",
            configuration=True,
            permanent=True,
        )
    if isinstance(exc, PartialCredentialsError):
        return Explanation(
            f"incomplete AWS credentials ({exc})",
            "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use AWS_PROFILE",
            configuration=True,
            permanent=True,
        )
    if isinstance(exc, ProfileNotFound):
        return Explanation(
            str(exc),
            "set AWS_PROFILE to a profile of your AWS config file, or unset it",
            configuration=True,
            permanent=True,
        )
    if isinstance(exc, NoRegionError):
        return Explanation(
            "no AWS region",
            "set AWS_REGION to the region of the DLQ and the ledger",
            configuration=True,
            permanent=True,
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return Explanation(
            f"could not connect to the AWS endpoint {exc.kwargs.get('endpoint_url', '?')}",
            "check AWS_ENDPOINT_URL, AWS_REGION and the network (proxy, VPC endpoint, "
            "security group)",
        )
    if isinstance(exc, ReadTimeoutError):
        return Explanation(
            f"the AWS endpoint {exc.kwargs.get('endpoint_url', '?')} did not answer in time",
            "try again; if it persists, check the network",
        )
    return Explanation(f"the AWS client failed ({type(exc).__name__}: {exc})", "try again")


def _client_error(error: AwsError) -> Explanation:
    code, op, said = error.code, error.operation, error.message[:300]
    if code in BAD_CREDENTIALS:
        return Explanation(
            f"AWS refused the credentials ({code} on {op}): they are wrong or expired",
            "refresh them (a new session token, `aws sso login`) or fix AWS_PROFILE / "
            "AWS_ACCESS_KEY_ID",
            configuration=True,
            permanent=True,
        )
    if code in ACCESS_DENIED or error.http_status == 403:
        cause, fix = _denied(error)
        return Explanation(cause, fix, configuration=True, permanent=True)
    if code.startswith("KMS."):
        return Explanation(
            f"the queue's KMS key refused {op} ({code}: {said})",
            "enable the key and let this role use it (kms:Decrypt, kms:GenerateDataKey)",
            configuration=True,
            permanent=True,
        )
    if code in THROTTLING:
        return Explanation(
            f"AWS throttled {op} ({code})",
            "try again in a minute; if it persists, run fewer processes or raise the service quota",
        )
    if code in MISSING_QUEUE:
        return Explanation(
            f"the SQS queue does not exist ({op}: {code})",
            "check DLQ_QUEUE_URL (read by the poller, setup and doctor; the Lambda's trigger "
            "names its own queue), REPLAY_PARKING_QUEUE_URL (the replay workers and setup) "
            "and AWS_REGION; "
            "`dlq-replay setup` never creates the DLQ",
            configuration=True,
            permanent=True,
        )
    if code == "ResourceNotFoundException" and op in DYNAMODB_OPERATIONS:
        return Explanation(
            f"the ledger table does not exist ({op}: {said})",
            "run `dlq-replay setup` to create it, or fix LEDGER_TABLE and AWS_REGION",
            configuration=True,
            permanent=True,
        )
    if code in SERVER_ERRORS or (error.http_status or 0) >= 500:
        return Explanation(f"AWS failed {op} on its side ({code}: {said})", "try again")
    return Explanation(
        f"AWS refused {op} ({code}: {said})",
        "fix what the message names, then try again",
        configuration=True,
    )


def _denied(error: AwsError) -> tuple[str, str]:
    found = _DENIED.search(error.message)
    principal = _PRINCIPAL.search(error.message)
    who = principal.group("principal") if principal else "the role or user running dlq-replay"
    if found is None:
        return (
            f"AWS denied {error.operation} ({error.code}: {error.message[:200]})",
            f"allow the action of {error.operation} in the IAM policy of {who} "
            "(template.yaml's WorkerPolicy lists what the workers need)",
        )
    action = found.group("action")
    resource = found.group("resource")
    on = f" on {resource}" if resource else ""
    cause = f"AWS denied {error.operation}: {who} may not {action}{on}"
    if "explicit deny" in error.message:
        return cause, (
            f"remove the explicit Deny of {action} (an SCP, a permissions boundary, a "
            "resource or an identity policy)"
        )
    return cause, (
        f"allow {action}{on} in the IAM policy of {who} (template.yaml's WorkerPolicy "
        "lists what the workers need)"
    )


def explain_redis(exc: RedisError, url: str) -> Explanation:
    """What a Redis failure means, naming REDIS_URL without its password."""
    shown = redact_url(url)
    said = scrub(str(exc), url).rstrip(".")
    if isinstance(exc, AuthenticationError):
        return Explanation(
            f"Redis at {shown} refused the credentials in REDIS_URL ({said})",
            "fix the user/password in REDIS_URL",
            configuration=True,
            permanent=True,
        )
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return Explanation(
            f"cannot reach Redis at {shown} (REDIS_URL): {said}",
            "start Redis or fix REDIS_URL (host, port, rediss:// for TLS)",
        )
    return Explanation(f"Redis at {shown} answered an error: {said}", "check the server")


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def scrub(text: str, url: str) -> str:
    """`text` with the password of `url` taken out, should a library have quoted it."""
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text
