"""What an AWS failure means to an operator: one line naming cause and fix.

The CLI prints these lines, `doctor` puts them in its table, and the poller asks
`permanent` (through `is_permanent`) whether to stop or to try again later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from dlq.awserrors.codes import MISSING_QUEUE, AwsError, AwsErrorKind, aws_error

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


def _operator_must(cause: str, fix: str) -> Explanation:
    return Explanation(cause, fix, configuration=True, permanent=True)


def explain_aws(exc: BotoCoreError | ClientError) -> Explanation:
    """What an AWS failure means: what happened and what to do."""
    if isinstance(exc, ClientError):
        return _client_error(aws_error(exc))
    if isinstance(exc, NoCredentialsError):
        return _operator_must(
            "no AWS credentials found",
            "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role "
            "(instance profile, ECS task role, IRSA)",
        )
    if isinstance(exc, PartialCredentialsError):
        return _operator_must(
            f"incomplete AWS credentials ({exc})",
            "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use AWS_PROFILE",
        )
    if isinstance(exc, ProfileNotFound):
        return _operator_must(
            str(exc), "set AWS_PROFILE to a profile of your AWS config file, or unset it"
        )
    if isinstance(exc, NoRegionError):
        return _operator_must(
            "no AWS region", "set AWS_REGION to the region of the DLQ and the ledger"
        )
    if isinstance(exc, ParamValidationError):
        return _operator_must(
            f"an invalid AWS call ({' '.join(str(exc).split())})",
            "fix the setting it names (a queue URL, a table name), then try again",
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
    kind = error.kind
    if kind is AwsErrorKind.THROTTLED:
        return Explanation(
            f"AWS throttled {op} ({code})",
            "try again in a minute; if it persists, run fewer processes or raise the service quota",
        )
    if kind is AwsErrorKind.UNAVAILABLE:
        return Explanation(f"AWS failed {op} on its side ({code}: {said})", "try again")
    if kind is AwsErrorKind.BUSY:
        return Explanation(
            f"{op} found its resource busy or not ready ({code}: {said})",
            "try again in a minute; if it persists, fix what the message names",
        )
    if kind is AwsErrorKind.EXPIRED:
        return Explanation(
            f"AWS credentials or the request's signature expired ({code} on {op})",
            "try again: role credentials renew themselves; a static session token does not, "
            "refresh it (`aws sso login`, a new AWS_SESSION_TOKEN); a skewed clock needs NTP",
            configuration=True,
        )
    if kind is AwsErrorKind.BAD_CREDENTIALS:
        return _operator_must(
            f"AWS refused the credentials ({code} on {op}): they are wrong or expired",
            "refresh them (a new session token, `aws sso login`) or fix AWS_PROFILE / "
            "AWS_ACCESS_KEY_ID",
        )
    if kind is AwsErrorKind.ACCESS_DENIED:
        return _operator_must(*_denied(error))
    if kind is AwsErrorKind.KMS:
        return _operator_must(
            f"a KMS key refused {op} ({code}: {said})",
            "enable the key and let this role use it (kms:Decrypt, kms:GenerateDataKey)",
        )
    if kind is AwsErrorKind.MISSING:
        return _operator_must(*_missing(error))
    # INVALID (permanent) or UNKNOWN (not: a guess should not stop a poller).
    return Explanation(
        f"AWS refused {op} ({code}: {said})",
        "fix what the message names, then try again",
        configuration=True,
        permanent=kind.permanent,
    )


def _missing(error: AwsError) -> tuple[str, str]:
    code, op, said = error.code, error.operation, error.message[:300]
    if code in MISSING_QUEUE:
        return (
            f"the SQS queue does not exist ({op}: {code})",
            "check DLQ_QUEUE_URL (read by the poller, setup and doctor; the Lambda's trigger "
            "names its own queue), REPLAY_PARKING_QUEUE_URL (the replay workers and setup) "
            "and AWS_REGION; "
            "`dlq-replay setup` never creates the DLQ",
        )
    if code == "ResourceNotFoundException" and op in DYNAMODB_OPERATIONS:
        return (
            f"the ledger table does not exist ({op}: {said})",
            "run `dlq-replay setup` to create it, or fix LEDGER_TABLE and AWS_REGION",
        )
    return (
        f"what {op} names does not exist ({code}: {said})",
        "create it, or fix the setting that names it and AWS_REGION",
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


def is_permanent(exc: BaseException | None) -> bool:
    """Whether an AWS failure will repeat until an operator acts (credentials, IAM, names)."""
    return isinstance(exc, ClientError | BotoCoreError) and explain_aws(exc).permanent
