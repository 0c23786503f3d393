"""The SQS-triggered Lambda front door (`ingest.lambda_handler.handler`).

The event source mapping must enable `ReportBatchItemFailures`: the handler returns
exactly the records whose hand-off failed, and never raises for bad input (bad input
is recorded as `rejected` and leaves the queue).
"""

from __future__ import annotations

import logging
from typing import Any

from dlq.errors import HandOffError
from dlq.events import DlqMessage
from dlq.logs import configure_logging
from dlq.metrics.buffer import CountBuffer
from dlq.metrics.emf import EmfCounts
from dlq.metrics.wiring import process_metrics
from dlq.redisclient import redis_client
from ingest.frontdoor import FrontDoor

log = logging.getLogger(__name__)
_front_door: FrontDoor | None = None


def handler(
    event: Any, context: Any = None, *, front_door: FrontDoor | None = None
) -> dict[str, Any]:
    """Ingest a batch of DLQ records; report the ones to receive again.

    Prints one CloudWatch EMF line with the batch's counts (`DlqReplay` EventsIngested,
    EventsDuplicate, EventsRejected) when any counted something, and writes the batch's
    Redis counts (status moves, outcomes) in one flush before it returns: nothing waits in
    a container frozen between invocations.
    """
    door = front_door or _default_front_door()
    try:
        return _handle(door, event)
    finally:
        door.flush_counts()


def _handle(door: FrontDoor, event: Any) -> dict[str, Any]:
    emf = EmfCounts(_print)
    records = event.get("Records") if isinstance(event, dict) else None
    failures: list[dict[str, str]] = []
    for record in records if isinstance(records, list) else []:
        message = DlqMessage.from_lambda_record(record if isinstance(record, dict) else {})
        try:
            result = door.handle(message)
        except HandOffError as exc:
            log.error(str(exc), extra={"sqs_message_id": message.message_id})
            failures.append({"itemIdentifier": message.message_id})
        except Exception:
            log.exception(
                "unexpected error; the record stays in the DLQ",
                extra={"sqs_message_id": message.message_id},
            )
            failures.append({"itemIdentifier": message.message_id})
        else:
            emf.ingested(result.outcome.value, target_arn=None, dlq_error_code=None)
    emf.flush()
    return {"batchItemFailures": failures}


def _print(line: str) -> None:
    # Lambda sends stdout to CloudWatch Logs, which extracts EMF from each line.
    print(line, flush=True)


def _default_front_door() -> FrontDoor:
    # Built once per Lambda container, on the first invocation, not at import. The settings
    # and the Redis password (REDIS_PASSWORD_SECRET_ARN) are the process's, which the
    # broker's connections share (tasks.config).
    from tasks.config import redis_credentials, settings

    global _front_door
    if _front_door is None:
        configure_logging()
        config, credentials = settings(), redis_credentials()
        if credentials is not None:
            credentials.read()
        # The outcome counters `dlq-replay status` reads (connects on first use). Summed in
        # a buffer the handler flushes itself: no flusher thread, which a frozen container
        # would stop with counts in hand.
        cache = redis_client(config, credentials, health_check_interval=30)
        counts = CountBuffer(cache)
        metrics = process_metrics(config, cache, prometheus=False, counts=counts)
        _front_door = FrontDoor.from_settings(
            config, metrics=metrics, redis_auth=credentials, counts=counts
        )
    return _front_door
