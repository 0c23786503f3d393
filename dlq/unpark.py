"""The unpark use case: take exhausted events back from the parking queue (`dlq.parking`).

Each parked message is the event's original body with its DLQ context (RULE_ARN,
TARGET_ARN, ERROR_CODE...), so it reads back as a DLQ message. A message the filters
choose is handed back to the ingest: its ledger item, failed or exhausted, gets a fresh
attempt budget (a redrive, its history naming the parking queue and the operator) and its
replay is enqueued; an item the ledger no longer holds (its TTL passed) is admitted anew
by the ingest core. The message is deleted only after that hand-off. A message the
filters do not choose, or whose item is not failed or exhausted, is left in the queue
(its visibility released at the end of the run, so one run reads each message once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dlq.broker import ReplayEnqueuer
from dlq.events import DlqMessage, EventKey, InvalidMessage, parse_dlq_message
from dlq.ledger import REDRIVABLE_STATUSES, ClaimRefused, LedgerStore
from dlq.locks import lock_name

log = logging.getLogger(__name__)

#: The note of the history entry an unparked item gets.
UNPARKED = "unparked from the parking queue"
#: How long a read message stays invisible: the whole run, to read each message once.
HOLD_SECONDS = 600


@dataclass(frozen=True, slots=True)
class UnparkFilter:
    """Which parked messages to take back; an unset field matches every message."""

    target_arn: str | None = None
    conversation_id: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Parked:
    """One parked message as read back: its event key and conversation, when it names them."""

    message: DlqMessage
    key: EventKey | None
    conversation_id: str | None

    def chosen_by(self, wanted: UnparkFilter) -> bool:
        pairs = (
            (wanted.target_arn, self.message.error.target_arn),
            (wanted.conversation_id, self.conversation_id),
            (wanted.event_id, self.key.event_id if self.key else None),
        )
        return all(not want or have == want for want, have in pairs)


@dataclass
class UnparkResult:
    #: event id -> what became of it: `redriven`, `admitted`, `would unpark` (dry run).
    taken: dict[str, str] = field(default_factory=dict)
    #: event id (or message id) -> why it was left in the queue.
    left: dict[str, str] = field(default_factory=dict)
    #: Messages read that the filters did not choose (left, unread by this run).
    unmatched: int = 0


class ParkingReader:
    """Reads the parking queue once through, holding what it read until `release`."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url
        self._held: dict[str, str] = {}  # message id -> receipt handle

    def messages(self) -> Iterator[Parked]:
        """Every message, each once (they stay invisible until `release` or `delete`)."""
        while True:
            response = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                VisibilityTimeout=HOLD_SECONDS,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            )
            batch = response.get("Messages", [])
            if not batch:
                return
            for raw in batch:
                message = DlqMessage.from_receive_message(raw)
                if message.message_id in self._held:
                    continue
                self._held[message.message_id] = message.receipt_handle
                yield _read(message)

    def delete(self, message: DlqMessage) -> None:
        self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message.receipt_handle)
        self._held.pop(message.message_id, None)

    def release(self) -> None:
        """Make every message read and not deleted visible again."""
        handles = list(self._held.items())
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, (_, handle) in enumerate(handles[start : start + 10])
            ]
            self._sqs.change_message_visibility_batch(QueueUrl=self._url, Entries=entries)
        self._held.clear()


def unpark(
    reader: ParkingReader,
    *,
    ledger: LedgerStore,
    enqueuer: ReplayEnqueuer,
    admit: Callable[[DlqMessage], object],
    wanted: UnparkFilter,
    operator: str,
    limit: int | None = None,
    dry_run: bool = False,
) -> UnparkResult:
    """Take back the parked messages `wanted` chooses (at most `limit`), as the module says;
    `admit` is the ingest's front door, for an event the ledger no longer holds."""
    result = UnparkResult()
    try:
        for parked in reader.messages():
            if not parked.chosen_by(wanted):
                result.unmatched += 1
                continue
            if limit is not None and len(result.taken) >= limit:
                break
            _take(parked, reader, ledger, enqueuer, admit, operator, dry_run, result)
    finally:
        reader.release()
    return result


def _take(
    parked: Parked,
    reader: ParkingReader,
    ledger: LedgerStore,
    enqueuer: ReplayEnqueuer,
    admit: Callable[[DlqMessage], object],
    operator: str,
    dry_run: bool,
    result: UnparkResult,
) -> None:
    message, key = parked.message, parked.key
    if key is None:
        result.left[message.message_id] = "not a replayable event (inspect the message)"
        return
    if key.event_id in result.taken:  # a second copy of one event parked twice
        if not dry_run:
            reader.delete(message)
        return
    current = ledger.get(key)
    if current is not None and current.status not in REDRIVABLE_STATUSES:
        result.left[key.event_id] = f"its ledger item is {current.status.value}, not exhausted"
        return
    if dry_run:
        result.taken[key.event_id] = "would unpark"
        return
    if current is None:
        admit(message)  # the ingest core: a new item and its replay, or HandOffError
        outcome = "admitted"
    else:
        try:
            redriven = ledger.redrive(key, note=UNPARKED, operator=operator)
        except ClaimRefused as refused:
            now = refused.current.status.value if refused.current else "gone"
            result.left[key.event_id] = f"changed while unparking (now {now})"
            return
        enqueuer.enqueue_replay(
            key, lock=lock_name(key, current.conversation_id), generation=redriven.redriven_at
        )
        outcome = "redriven"
    reader.delete(message)  # only once the ledger and the broker have it
    result.taken[key.event_id] = outcome
    log.warning(
        f"{UNPARKED} by {operator}",
        extra={"event_id": key.event_id, "target_arn": key.target_arn, "outcome": outcome},
    )


def _read(message: DlqMessage) -> Parked:
    try:
        parsed = parse_dlq_message(message)
    except InvalidMessage:
        return Parked(message, None, None)
    return Parked(message, parsed.key, parsed.conversation_id)
