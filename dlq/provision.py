"""Create what a local run needs: the DLQ, target queues, the parking queue, the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field

from dlq.aws import aws_client
from dlq.ledger import create_table
from dlq.settings import Settings

DEFAULT_DLQ_NAME = "genesys-eventbridge-dlq"


@dataclass(frozen=True)
class Provisioned:
    """Where things are: queue URLs and ARNs by name, and whether the table is new."""

    dlq_url: str
    table_created: bool
    queue_urls: dict[str, str] = field(default_factory=dict)
    queue_arns: dict[str, str] = field(default_factory=dict)


def provision(settings: Settings, *, queues: tuple[str, ...] = ()) -> Provisioned:
    """Idempotently create the DLQ (named by DLQ_QUEUE_URL), extra queues and the ledger."""
    sqs = aws_client("sqs", settings)
    dlq_name = settings.dlq_queue_url.rstrip("/").rsplit("/", 1)[-1] or DEFAULT_DLQ_NAME
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    for name in (dlq_name, *queues):
        # The DLQ's visibility timeout leaves the poller time to hand a batch off.
        url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "120"})["QueueUrl"]
        urls[name] = url
        arns[name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
    created = create_table(aws_client("dynamodb", settings), settings.ledger_table)
    return Provisioned(
        dlq_url=urls[dlq_name], table_created=created, queue_urls=urls, queue_arns=arns
    )
