"""The review of an existing EventBridge dead-letter queue: read, judged, never changed.

Everything here comes from one `GetQueueAttributes` call. Each finding says what was
found and, when it is not fine, the change to make (dlq-replay makes none: the queue
belongs to whoever set up the EventBridge rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatch
from typing import Any

from botocore.exceptions import ClientError

from dlq.awserrors import MISSING_QUEUE, aws_error, explain_aws

#: AWS's advice for an SQS-triggered function: the queue's visibility timeout is at
#: least six times the function's timeout.
LAMBDA_VISIBILITY_FACTOR = 6
#: The ingest function's timeout judged by when INGEST_FRONT_DOOR is `lambda` and
#: --lambda-timeout is not given (the function's real one may be shorter: template.yaml's
#: FunctionTimeout defaults to 30 s; a longer guess only asks for more visibility).
DEFAULT_LAMBDA_TIMEOUT = 60
#: The SQS maximum, which is also the advice when a backlog is waiting.
MAX_RETENTION_SECONDS = 14 * 24 * 3600
EVENTS_PRINCIPAL = "events.amazonaws.com"
AWS_MANAGED_SQS_KEY = "alias/aws/sqs"


class Severity(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    """One thing `setup` checked about the DLQ: what it found and the fix, if any."""

    check: str
    severity: Severity
    found: str
    fix: str = ""


def ingest_lambda_timeout(front_door: str, given: int | None) -> int | None:
    """The ingest Lambda's timeout to judge the DLQ by, or None when no Lambda ingests.

    `given`: --lambda-timeout as passed (None: not passed; 0: no Lambda), which wins over
    `front_door`, INGEST_FRONT_DOOR (`lambda` or `poller`).
    """
    if given is not None:
        return given or None
    return DEFAULT_LAMBDA_TIMEOUT if front_door == "lambda" else None


def review_dlq(
    sqs: Any, queue_url: str, *, lambda_timeout: int | None, receive_visibility: int
) -> list[Finding]:
    """Findings about the DLQ at `queue_url`; never changes the queue.

    `lambda_timeout`: the ingest function's timeout in seconds (None: no Lambda).
    `receive_visibility`: what the poller asks for on each receive.
    """
    if not queue_url:
        return [
            Finding(
                "dlq",
                Severity.WARN,
                "DLQ_QUEUE_URL is not set: the dead-letter queue was not checked",
                "set DLQ_QUEUE_URL to the URL of the queue in the rule target's "
                "DeadLetterConfig (`aws events list-targets-by-rule --rule NAME` shows its ARN)",
            )
        ]
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
            "Attributes"
        ]
    except ClientError as exc:
        return [_unreadable(exc, queue_url)]
    depth = int(attributes.get("ApproximateNumberOfMessages", 0))
    in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
    findings = [
        Finding(
            "dlq",
            Severity.OK,
            f"{attributes.get('QueueArn', queue_url)} is readable: {depth} messages waiting, "
            f"{in_flight} in flight",
        ),
        _standard(attributes),
        _visibility(attributes, lambda_timeout, receive_visibility),
        _policy(attributes),
        _encryption(attributes),
        _retention(attributes, depth),
    ]
    redrive = _redrive(attributes)
    if redrive is not None:
        findings.append(redrive)
    return findings


def _unreadable(exc: ClientError, queue_url: str) -> Finding:
    error = aws_error(exc)
    if error.code in MISSING_QUEUE:
        return Finding(
            "dlq",
            Severity.FAIL,
            f"no queue at DLQ_QUEUE_URL {queue_url} (in this account and region)",
            "set DLQ_QUEUE_URL to the existing dead-letter queue (`aws sqs get-queue-url "
            "--queue-name NAME`) and AWS_REGION to its region; setup never creates the DLQ",
        )
    explained = explain_aws(exc)
    return Finding("dlq", Severity.FAIL, explained.cause, explained.fix)


def _standard(attributes: dict[str, str]) -> Finding:
    if attributes.get("FifoQueue") == "true":
        return Finding(
            "dlq type",
            Severity.FAIL,
            "a FIFO queue: EventBridge does not accept a FIFO queue as a dead-letter queue",
            "use a standard queue as the rule target's DeadLetterConfig and point "
            "DLQ_QUEUE_URL at it",
        )
    return Finding("dlq type", Severity.OK, "a standard queue, as EventBridge requires")


def _visibility(
    attributes: dict[str, str], lambda_timeout: int | None, receive_visibility: int
) -> Finding:
    timeout = int(attributes.get("VisibilityTimeout", 30))
    poller = (
        f"the poller is not affected (it asks {receive_visibility} s on each receive)"
        if receive_visibility
        else "the poller uses it as it is"
    )
    if lambda_timeout is None:
        return Finding(
            "dlq visibility timeout",
            Severity.OK,
            f"VisibilityTimeout {timeout} s; no ingest Lambda (INGEST_FRONT_DOOR=poller, or "
            f"--lambda-timeout 0); {poller}",
        )
    advised = LAMBDA_VISIBILITY_FACTOR * lambda_timeout
    fix = (
        f"raise the queue's VisibilityTimeout to at least {advised} s (`aws sqs "
        "set-queue-attributes --queue-url URL --attributes VisibilityTimeout="
        f"{advised}`), or pass the function's real timeout with --lambda-timeout, or set "
        "INGEST_FRONT_DOOR=poller if the poller ingests and no Lambda is triggered by this "
        "queue"
    )
    if timeout < lambda_timeout:
        return Finding(
            "dlq visibility timeout",
            Severity.FAIL,
            f"VisibilityTimeout {timeout} s is below the ingest Lambda's timeout "
            f"({lambda_timeout} s): Lambda refuses such a queue as a trigger; {poller}",
            fix,
        )
    if timeout < advised:
        return Finding(
            "dlq visibility timeout",
            Severity.WARN,
            f"VisibilityTimeout {timeout} s is below {LAMBDA_VISIBILITY_FACTOR} x the ingest "
            f"Lambda's timeout ({lambda_timeout} s) = {advised} s, AWS's advice: a batch "
            f"still in hand can be received twice; {poller}",
            fix,
        )
    return Finding(
        "dlq visibility timeout",
        Severity.OK,
        f"VisibilityTimeout {timeout} s >= {LAMBDA_VISIBILITY_FACTOR} x the ingest Lambda's "
        f"timeout ({lambda_timeout} s); {poller}",
    )


def _policy(attributes: dict[str, str]) -> Finding:
    queue_arn = attributes.get("QueueArn", "QUEUE_ARN")
    region, account = _region_account(queue_arn)
    statement = json.dumps(
        {
            "Effect": "Allow",
            "Principal": {"Service": EVENTS_PRINCIPAL},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {
                "ArnEquals": {"aws:SourceArn": f"arn:aws:events:{region}:{account}:rule/RULE"}
            },
        },
        separators=(",", ":"),
    )
    grants = [g for g in map(_grant, _statements(attributes.get("Policy"))) if g is not None]
    if not grants:
        return Finding(
            "dlq policy",
            Severity.FAIL,
            "the queue policy lets no EventBridge rule send (no Allow of sqs:SendMessage "
            f"to {EVENTS_PRINCIPAL}): EventBridge cannot put failed events here",
            f"add this statement to the queue's Policy (with your rule's ARN): {statement}",
        )
    anyone = [g for g in grants if g.anyone and not g.sources]
    if anyone:
        return Finding(
            "dlq policy",
            Severity.WARN,
            'the queue policy lets any principal send messages (Principal "*" without a '
            "condition): anyone could inject events that dlq-replay would redeliver",
            f"replace that statement by one for {EVENTS_PRINCIPAL} with an aws:SourceArn "
            f"condition: {statement}",
        )
    unbound = [g for g in grants if not g.sources]
    if unbound:
        return Finding(
            "dlq policy",
            Severity.WARN,
            f"{EVENTS_PRINCIPAL} may send without an aws:SourceArn condition: any rule, in "
            "any account, can put events here",
            f"add the condition naming your rule(s): {statement}",
        )
    sources = sorted({s for g in grants for s in g.sources})
    return Finding(
        "dlq policy",
        Severity.OK,
        f"EventBridge may send, from {', '.join(sources)}",
    )


@dataclass(frozen=True)
class _Grant:
    """An Allow of sqs:SendMessage: to anyone or to EventBridge, bound to these sources."""

    anyone: bool
    sources: tuple[str, ...]


def _statements(policy: str | None) -> list[dict[str, Any]]:
    if not policy:
        return []
    try:
        document = json.loads(policy)
    except ValueError:
        return []
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if isinstance(s, dict)]


def _grant(statement: dict[str, Any]) -> _Grant | None:
    if statement.get("Effect") != "Allow":
        return None
    actions = [str(a).lower() for a in _listed(statement.get("Action"))]
    if not any(fnmatch("sqs:sendmessage", a) for a in actions):
        return None
    principal = statement.get("Principal")
    if principal == "*":
        anyone, events = True, False
    elif isinstance(principal, dict):
        anyone = "*" in _listed(principal.get("AWS"))
        events = EVENTS_PRINCIPAL in _listed(principal.get("Service"))
    else:
        return None
    if not (anyone or events):
        return None
    sources: list[str] = []
    for operator in (statement.get("Condition") or {}).values():
        if not isinstance(operator, dict):
            continue
        for key, values in operator.items():
            if key.lower() in ("aws:sourcearn", "aws:sourceaccount", "aws:sourceowner"):
                sources += [str(v) for v in _listed(values)]
    return _Grant(anyone=anyone, sources=tuple(sources))


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _region_account(queue_arn: str) -> tuple[str, str]:
    parts = queue_arn.split(":")
    return (parts[3], parts[4]) if len(parts) >= 6 else ("REGION", "ACCOUNT")


def _encryption(attributes: dict[str, str]) -> Finding:
    key = attributes.get("KmsMasterKeyId")
    if key and key.endswith(AWS_MANAGED_SQS_KEY):
        return Finding(
            "dlq encryption",
            Severity.FAIL,
            f"encrypted with the AWS managed key {AWS_MANAGED_SQS_KEY}, whose key policy "
            "cannot let EventBridge use it: EventBridge cannot send here",
            "encrypt with a customer managed key whose policy allows "
            f"{EVENTS_PRINCIPAL} kms:GenerateDataKey and kms:Decrypt, or use SSE-SQS "
            "(SqsManagedSseEnabled=true)",
        )
    if key:
        return Finding(
            "dlq encryption",
            Severity.OK,
            f"SSE-KMS with key {key}",
            f"make sure the ingest Lambda's role and the poller's role have kms:Decrypt on "
            f"{key} (template.yaml: DeadLetterQueueKmsKeyArn), and that its key policy lets "
            f"{EVENTS_PRINCIPAL} use kms:GenerateDataKey and kms:Decrypt (not checked here)",
        )
    if attributes.get("SqsManagedSseEnabled") == "true":
        return Finding("dlq encryption", Severity.OK, "SSE-SQS (SQS-managed keys)")
    return Finding(
        "dlq encryption",
        Severity.WARN,
        "not encrypted at rest; Genesys events can carry customer data",
        "turn on SSE-SQS: `aws sqs set-queue-attributes --queue-url URL --attributes "
        "SqsManagedSseEnabled=true`",
    )


def _retention(attributes: dict[str, str], depth: int) -> Finding:
    retention = int(attributes.get("MessageRetentionPeriod", 345600))
    days = f"{retention / 86400:g} days"
    if depth == 0:
        return Finding(
            "dlq retention", Severity.OK, f"MessageRetentionPeriod {days}; the queue is empty"
        )
    longer = (
        f"; raising MessageRetentionPeriod (up to {MAX_RETENTION_SECONDS}, 14 days) gives more time"
        if retention < MAX_RETENTION_SECONDS
        else ""
    )
    return Finding(
        "dlq retention",
        Severity.WARN,
        f"MessageRetentionPeriod {days} and {depth} messages waiting: SQS deletes each "
        f"one {days} after EventBridge put it there (the CloudWatch metric "
        "ApproximateAgeOfOldestMessage shows how old the oldest is)",
        f"start the ingest (the Lambda, or `dlq-replay poll`) soon{longer}",
    )


def _redrive(attributes: dict[str, str]) -> Finding | None:
    raw = attributes.get("RedrivePolicy")
    if not raw:
        return None
    try:
        policy = json.loads(raw)
        limit, target = int(policy["maxReceiveCount"]), str(policy["deadLetterTargetArn"])
    except (ValueError, KeyError, TypeError):
        return Finding(
            "dlq redrive policy",
            Severity.WARN,
            f"an unreadable RedrivePolicy: {raw}",
            "remove the queue's RedrivePolicy, or set it to JSON with maxReceiveCount (100 or "
            "more) and deadLetterTargetArn",
        )
    return Finding(
        "dlq redrive policy",
        Severity.WARN,
        f"a message received {limit} times moves on to {target}: a message the ingest "
        "keeps during a ledger or Redis outage, or one `doctor` peeks at, counts a receive",
        f"raise maxReceiveCount (100 or more) or remove the queue's RedrivePolicy; replay "
        f"what reached {target} too",
    )
