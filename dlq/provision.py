"""`setup` on a real account: create only what dlq-replay owns, review the DLQ.

dlq-replay owns the ledger table and, when `REPLAY_PARKING_QUEUE_URL` is set, the
parking queue: those are created when missing and left as they are when present. The
EventBridge dead-letter queue belongs to whoever set up the rule: it is only read
(`GetQueueAttributes`) and judged, never created or changed. Local queues for the demo
are `devstack.queues`' business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from dlq.aws import aws_client
from dlq.awserrors import MISSING_QUEUE, aws_error, explain_aws
from dlq.doctor.queue import Finding, Severity, ingest_lambda_timeout, review_dlq
from dlq.ledger import create_table
from dlq.settings import Settings

#: Parked events wait for a person: keep them as long as SQS allows.
PARKING_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class SetupResult:
    """What `setup` created, and what it found (the DLQ review included)."""

    ledger_table: str
    table_created: bool
    dlq_url: str
    parking_url: str | None
    parking_created: bool
    findings: tuple[Finding, ...]

    @property
    def failed(self) -> bool:
        """Whether a finding is a failure the operator must fix."""
        return any(f.severity is Severity.FAIL for f in self.findings)


def setup(
    settings: Settings, *, lambda_timeout: int | None = None, receive_visibility: int = 0
) -> SetupResult:
    """Create the ledger table and the parking queue when missing; review the DLQ.

    `lambda_timeout`: the ingest function's timeout, to judge the DLQ's visibility
    timeout by, as --lambda-timeout gives it (0: there is no ingest Lambda; None: as
    INGEST_FRONT_DOOR says); `receive_visibility`: the visibility timeout the poller asks
    for on each receive.
    """
    sqs = aws_client("sqs", settings)
    table = settings.ledger_table
    created = create_table(aws_client("dynamodb", settings), table)
    findings = [
        Finding("ledger table", Severity.OK, f"{table}: created, with its indexes and TTL")
        if created
        else Finding(
            "ledger table",
            Severity.OK,
            f"{table}: already there, left as it is (`dlq-replay doctor` checks its indexes "
            "and TTL)",
        )
    ]
    parking_url, parking_created, parking = ensure_parking_queue(
        sqs, settings.replay_parking_queue_url
    )
    if parking is not None:
        findings.append(parking)
    findings += review_dlq(
        sqs,
        settings.dlq_queue_url,
        lambda_timeout=ingest_lambda_timeout(settings.ingest_front_door, lambda_timeout),
        receive_visibility=receive_visibility,
    )
    return SetupResult(
        ledger_table=table,
        table_created=created,
        dlq_url=settings.dlq_queue_url,
        parking_url=parking_url,
        parking_created=parking_created,
        findings=tuple(findings),
    )


def ensure_parking_queue(sqs: Any, url: str) -> tuple[str | None, bool, Finding | None]:
    """The parking queue at `url`, created when missing: (url, created, finding)."""
    if not url:
        return None, False, None
    name = queue_name(url)
    try:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    except ClientError as exc:
        if aws_error(exc).code not in MISSING_QUEUE:
            explained = explain_aws(exc)
            return (
                url,
                False,
                Finding("parking queue", Severity.FAIL, explained.cause, explained.fix),
            )
    else:
        return url, False, Finding("parking queue", Severity.OK, f"{arn}: there, left as it is")
    if name.endswith(".fifo"):
        return (
            url,
            False,
            Finding(
                "parking queue",
                Severity.FAIL,
                f"REPLAY_PARKING_QUEUE_URL names a FIFO queue ({name}) that does not exist: "
                "parked events are sent without a message group",
                "name a standard queue in REPLAY_PARKING_QUEUE_URL, for setup and the replay "
                "workers (they park there: restart them with it)",
            ),
        )
    created_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "MessageRetentionPeriod": str(PARKING_RETENTION_SECONDS),
            "SqsManagedSseEnabled": "true",
        },
    )["QueueUrl"]
    if _account_and_name(created_url) != _account_and_name(url):
        return (
            created_url,
            True,
            Finding(
                "parking queue",
                Severity.FAIL,
                f"created {created_url}, but REPLAY_PARKING_QUEUE_URL names {url} (another "
                "account or region than these credentials)",
                f"set REPLAY_PARKING_QUEUE_URL={created_url} for setup and the replay workers "
                "(restart them with it), or run setup with the credentials of the queue's "
                "account",
            ),
        )
    return (
        created_url,
        True,
        Finding("parking queue", Severity.OK, f"{created_url}: created (14 days' retention)"),
    )


def queue_name(url: str) -> str:
    """The queue's name: the last segment of its URL."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def _account_and_name(url: str) -> tuple[str, ...]:
    # Hosts differ between equivalent URLs (sqs.<region>.amazonaws.com, the legacy
    # queue.amazonaws.com, an emulator): the account and the name identify the queue.
    return tuple(urlsplit(url).path.strip("/").split("/")[-2:])
