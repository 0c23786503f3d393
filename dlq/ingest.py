"""The ingest core shared by both front doors: DLQ message -> ledger item -> replay task.

The ledger is written before the task is enqueued, and the front door deletes the
message (or leaves it out of `batchItemFailures`) only after both: a message that
reaches the ingest is never lost. Bad input is kept as a `rejected` item.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from dlq.arrivals import Arrival, Arrivals, Parked, Sent
from dlq.boundary import TrustBoundary
from dlq.broker import ReplayEnqueuer
from dlq.errors import HandOffError
from dlq.events import (
    DlqMessage,
    EventKey,
    InvalidMessage,
    SubscriberRecord,
    parse_dlq_message,
    subscriber_record,
)
from dlq.genesys.pending import PendingVerifications
from dlq.ledger import LedgerStore, Status
from dlq.locks import lock_name
from dlq.observe import NO_METRICS, MetricsObserver

log = logging.getLogger(__name__)
T = TypeVar("T")


class IngestOutcome(StrEnum):
    ACCEPTED = "accepted"
    REQUEUED = "requeued"  # the same SQS message again, after a hand-off that failed
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one DLQ message; the front door may delete it in every case."""

    message_id: str
    outcome: IngestOutcome
    key: EventKey | None = None
    reason: str | None = None


def admit(
    message: DlqMessage,
    *,
    ledger: LedgerStore,
    enqueuer: ReplayEnqueuer,
    org_id: str | None = None,
    boundary: TrustBoundary | None = None,
    verifications: PendingVerifications | None = None,
    metrics: MetricsObserver = NO_METRICS,
    arrivals: Arrivals | None = None,
    draining: bool = False,
) -> IngestResult:
    """Validate one DLQ message, record it in the ledger and enqueue its replay.

    A message outside the trust `boundary` (default: the Genesys partner buses of
    `org_id`, or of any org when it is None: `dlq.boundary`) is kept as `rejected`.

    With `verifications`, a new item's conversation is marked to verify in the next
    batch (an optimisation: the replay looks it up on its own if that fails). `metrics`
    hears each outcome (a hand-off that fails is not one: the message comes back).
    With `arrivals`, ordered passes learn that an event of the conversation just arrived;
    `draining` (the poller's receive brought the message): the event's line's pass is
    parked until the drain ends, and only the line's first event gets a task, which comes
    back when the hold ends (`dlq.arrivals`).

    Raises `HandOffError` when the ledger or the broker is unreachable: the caller must
    then leave the message in the queue, to be received again.
    """
    result = _admit(
        message,
        ledger=ledger,
        enqueuer=enqueuer,
        org_id=org_id,
        boundary=boundary if boundary is not None else TrustBoundary(org_id=org_id),
        verifications=verifications,
        arrivals=arrivals,
        draining=draining,
    )
    metrics.ingested(
        result.outcome.value,
        target_arn=result.key.target_arn if result.key else None,
        dlq_error_code=message.error.error_code,
    )
    return result


def _admit(
    message: DlqMessage,
    *,
    ledger: LedgerStore,
    enqueuer: ReplayEnqueuer,
    org_id: str | None,
    boundary: TrustBoundary,
    verifications: PendingVerifications | None,
    arrivals: Arrivals | None,
    draining: bool,
) -> IngestResult:
    record = subscriber_record(message.body)
    if record is not None:
        return _subscriber_record(message, record, ledger)
    try:
        parsed = parse_dlq_message(message, org_id=org_id)
        refusal = boundary.refusal(message.error.rule_arn, parsed.event.source)
        if refusal is not None:
            raise InvalidMessage(refusal.reason, code=refusal.code)
    except InvalidMessage as exc:
        reason, code = exc.reason, exc.code
        new = _write(lambda: ledger.put_rejected(message, reason, code=code), message)
        if new:
            log.warning(
                "rejected a DLQ message",
                extra={"sqs_message_id": message.message_id, "reason": reason, "code": code},
            )
        return _rejected(message, reason, new=new)

    try:
        existing = _write(lambda: ledger.put_received(parsed, message), message)
    except HandOffError as exc:
        # DynamoDB refusing the item itself (not the service being down) would refuse it
        # on every receive: keep it as rejected instead of letting it loop.
        if _error_code(exc.__cause__) != "ValidationException":
            raise
        reason = f"the ledger refused the item: {exc.__cause__}"
        new = _write(lambda: ledger.put_rejected(message, reason), message)
        return _rejected(message, reason, new=new)
    # The same SQS message back again while its item is still `received` is one whose
    # enqueue failed last time: enqueue it now (the claim makes a spare task harmless).
    # Another message id is EventBridge's duplicate: suppressed.
    # A later event of a conversation's hold finds it marked to verify by the first (or
    # verified by the batch since): it is not marked again.
    arrival = Arrival(first=True)
    retried = (
        existing is not None
        and existing.status is Status.RECEIVED
        and existing.sqs_message_id == message.message_id
    )
    if existing is not None and not retried:
        _write(lambda: ledger.count_duplicate(parsed.key), message)
    else:
        lock = lock_name(parsed.key, parsed.conversation_id)
        if arrivals is not None and parsed.conversation_id:
            park = Parked(parsed.key, lock) if draining else None
            arrival = _note_arrival(arrivals, parsed.conversation_id, park)
        if arrival.sent is not Sent.BEHIND:
            _enqueue(enqueuer, parsed.key, lock, arrival, arrivals)
    first_of_hold = arrival.first
    if (
        verifications is not None
        and parsed.conversation_id
        and (existing is None or retried)
        and first_of_hold
    ):
        _mark_to_verify(verifications, parsed.conversation_id)
    if existing is None:
        outcome = IngestOutcome.ACCEPTED
    else:
        outcome = IngestOutcome.REQUEUED if retried else IngestOutcome.DUPLICATE
    log.info(
        "ingested a DLQ message",
        extra={
            "sqs_message_id": message.message_id,
            "event_id": parsed.key.event_id,
            "target_arn": parsed.key.target_arn,
            "conversation_id": parsed.conversation_id,
            "outcome": outcome.value,
        },
    )
    return IngestResult(message.message_id, outcome, key=parsed.key)


def _subscriber_record(
    message: DlqMessage, record: SubscriberRecord, ledger: LedgerStore
) -> IngestResult:
    """One `rejected` item per event a custom-bus subscriber record names, findable by
    the event's id; the record leaves the queue (it can never be redelivered from here)."""
    new = False
    for key in record.keys:
        new |= _write(
            functools.partial(
                ledger.put_rejected, message, record.reason, key=key, error=record.error
            ),
            message,
        )
    if new:
        log.warning(
            "a custom-bus subscriber record: its events are kept as rejected",
            extra={"sqs_message_id": message.message_id, "events": len(record.keys)},
        )
    return _rejected(message, record.reason, new=new)


def _rejected(message: DlqMessage, reason: str, *, new: bool) -> IngestResult:
    """A message kept as rejected; received again (SQS delivers at least once, and its
    delete may have failed), it is already kept: a duplicate, counted once as rejected."""
    if new:
        return IngestResult(message.message_id, IngestOutcome.REJECTED, reason=reason)
    log.info(
        "a rejected DLQ message again: already kept, deleted",
        extra={"sqs_message_id": message.message_id},
    )
    return IngestResult(
        message.message_id, IngestOutcome.DUPLICATE, reason=f"already kept as rejected: {reason}"
    )


def _mark_to_verify(verifications: PendingVerifications, conversation_id: str) -> None:
    try:
        verifications.add(conversation_id)
    except Exception:
        # Only an optimisation: the replay looks the conversation up on its own.
        log.warning(
            "could not mark a conversation to verify in a batch",
            extra={"conversation_id": conversation_id},
        )


def _error_code(exc: BaseException | None) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return None


def _write(write: Callable[[], T], message: DlqMessage) -> T:
    try:
        return write()
    except (ClientError, BotoCoreError) as exc:
        raise HandOffError(
            f"ledger write failed for SQS message {message.message_id}: {exc}; "
            "the message stays in the DLQ and is retried"
        ) from exc


def _enqueue(
    enqueuer: ReplayEnqueuer,
    key: EventKey,
    lock: str,
    arrival: Arrival,
    arrivals: Arrivals | None,
) -> None:
    """Send the item's replay: now, or, for the first event of a line parked for the
    drain, when its hold ends (should the drain's end never be seen: the poller stopped)."""
    try:
        if arrival.sent is Sent.PARKED and arrivals is not None:
            enqueuer.enqueue_replay(
                key,
                lock=lock,
                countdown=arrivals.keep_seconds + random.uniform(0.05, 0.3),
                parked=True,
            )
        else:
            enqueuer.enqueue_replay(key, lock=lock)
    except Exception as exc:
        raise HandOffError(
            f"broker refused the replay of {key.event_id}: {exc}; "
            "the message stays in the DLQ (the reconciler also re-enqueues it)"
        ) from exc


def _note_arrival(arrivals: Arrivals, conversation_id: str, park: Parked | None) -> Arrival:
    """What noting the arrival found (when it fails: the first of a hold, not parked, so
    that the item gets a task of its own)."""
    try:
        return arrivals.arrived(conversation_id, park=park)
    except Exception as exc:
        # Order is kept by the ledger's line and the hold; the note only helps a shuffled
        # DLQ drained slowly. Losing it must not cost the message.
        log.warning(f"could not note the arrival of conversation {conversation_id}: {exc}")
        return Arrival(first=True)


def resume_parked(
    arrivals: Arrivals,
    enqueuer: ReplayEnqueuer,
    *,
    after: float,
    news: Callable[[str], None] | None = None,
) -> int:
    """The DLQ's drain ended: send the ordered passes parked for it (`Arrivals.unpark`),
    `after` seconds out, so that the drain's last arrivals are quiet first, and tell
    `news` (tracking's: it schedules a run) of the conversations whose tracking parked;
    how many passes."""
    if news is not None:
        for conversation_id in arrivals.unpark_tracking():
            news(conversation_id)
    parked = arrivals.unpark()
    for replay in parked:
        enqueuer.enqueue_replay(
            replay.key,
            lock=replay.lock,
            generation=replay.generation,
            countdown=after + random.uniform(0.05, 0.3),
            parked=True,
        )
    return len(parked)
