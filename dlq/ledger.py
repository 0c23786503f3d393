"""The DynamoDB ledger: one item per (event id, target), the truth about every event.

Every status change is a conditional write, so two writers can never both win:

    received --claim--> in_progress --ok--> replayed
                            |  +--retryable--> retry_scheduled --claim--> in_progress
                            +--fatal--> failed
                            +--attempts or age used up--> exhausted
    (bad input at ingest) --> rejected          failed | exhausted --redrive--> received
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from dlq.events import DlqError, DlqMessage, ParsedEvent

HISTORY_LIMIT = 20
#: A rejected body is kept whole up to this size; beyond it, a prefix and its digest.
REJECTED_BODY_LIMIT = 300 * 1024
BY_STATUS_INDEX = "by-status"
BY_CONVERSATION_INDEX = "by-conversation"


class Status(StrEnum):
    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    RETRY_SCHEDULED = "retry_scheduled"
    REPLAYED = "replayed"
    FAILED = "failed"
    EXHAUSTED = "exhausted"
    REJECTED = "rejected"


FINAL_STATUSES = frozenset({Status.REPLAYED, Status.FAILED, Status.EXHAUSTED, Status.REJECTED})
REDRIVABLE_STATUSES = frozenset({Status.FAILED, Status.EXHAUSTED})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One entry of an item's bounded history."""

    at: str
    outcome: str
    error: str | None = None
    task_id: str | None = None

    def to_item(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"at": self.at, "outcome": self.outcome}
        if self.error:
            entry["error"] = self.error[:500]
        if self.task_id:
            entry["task_id"] = self.task_id
        return entry


@dataclass(frozen=True, slots=True)
class LedgerItem:
    """A ledger item as the worker and the operator tools see it."""

    event_id: str
    target_arn: str
    status: Status
    attempts: int
    body: str
    received_at: str
    updated_at: str
    conversation_id: str | None = None
    participant_id: str | None = None
    detail_type: str | None = None
    source: str | None = None
    event_time: str | None = None
    correlation_id: str | None = None
    dlq: DlqError = field(default_factory=DlqError)
    last_error: str | None = None
    reject_reason: str | None = None
    duplicates: int = 0
    sqs_message_id: str | None = None
    lease_until: float | None = None
    next_attempt_at: float | None = None
    claim_token: str | None = None
    history: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> LedgerItem:
        def opt_float(name: str) -> float | None:
            value = item.get(name)
            return float(value) if value is not None else None

        return cls(
            event_id=item["event_id"],
            target_arn=item["target_arn"],
            status=Status(item["status"]),
            attempts=int(item.get("attempts", 0)),
            body=item.get("body", ""),
            received_at=item["received_at"],
            updated_at=item["updated_at"],
            conversation_id=item.get("conversation_id"),
            participant_id=item.get("participant_id"),
            detail_type=item.get("detail_type"),
            source=item.get("source"),
            event_time=item.get("event_time"),
            correlation_id=item.get("correlation_id"),
            dlq=DlqError(
                rule_arn=item.get("rule_arn"),
                target_arn=item.get("target_arn"),
                error_code=item.get("error_code"),
                error_message=item.get("error_message"),
                exhausted_retry_condition=item.get("exhausted_retry_condition"),
                retry_attempts=_opt_int(item.get("retry_attempts")),
            ),
            last_error=item.get("last_error"),
            reject_reason=item.get("reject_reason"),
            duplicates=int(item.get("duplicates", 0)),
            sqs_message_id=item.get("sqs_message_id"),
            lease_until=opt_float("lease_until"),
            next_attempt_at=opt_float("next_attempt_at"),
            claim_token=item.get("claim_token"),
            history=tuple(item.get("history", ())),
        )


class ClaimRefused(Exception):
    """The item could not be claimed; `current` is what the ledger holds (None if absent)."""

    def __init__(self, current: LedgerItem | None) -> None:
        status = current.status if current else "absent"
        super().__init__(f"claim refused: item is {status}")
        self.current = current


class StaleClaim(Exception):
    """The claim this worker held was lost (its lease expired and someone else took it)."""


class Ledger:
    """The ledger table, through a boto3 DynamoDB client (low-level, typed attribute values)."""

    def __init__(self, client: Any, table: str, *, ttl_days: int = 90) -> None:
        self._client = client
        self.table = table
        self.ttl_days = ttl_days

    # --- ingest -------------------------------------------------------------------

    def put_received(self, parsed: ParsedEvent, message: DlqMessage) -> LedgerItem | None:
        """Write a new `received` item; None when the key is new, else the existing item
        (left alone: `count_duplicate` records EventBridge's duplicates)."""
        now = _now()
        event = parsed.event
        item: dict[str, Any] = {
            "event_id": event.id,
            "target_arn": parsed.key.target_arn,
            "status": Status.RECEIVED.value,
            "attempts": 0,
            "body": message.body,
            "received_at": now.iso,
            "updated_at": now.iso,
            "next_attempt_at": now.epoch,
            "expires_at": self._expiry(now),
            "detail_type": event.detail_type,
            "source": event.source,
            "event_time": event.time.isoformat(),
            "conversation_id": parsed.conversation_id,
            "participant_id": parsed.participant_id,
            "correlation_id": parsed.correlation_id,
            "sqs_message_id": message.message_id,
            "history": [Attempt(at=now.iso, outcome="received").to_item()],
            **_dlq_fields(message.error),
        }
        if self._put_new(item):
            return None
        return self.get(parsed.key.event_id, parsed.key.target_arn)

    def put_rejected(self, message: DlqMessage, reason: str) -> bool:
        """Keep a message that cannot be replayed, with its reason and raw body.

        Keyed by the SQS message id (a bad message may have no event id), so the same
        message received twice is one item. True when it was new.
        """
        now = _now()
        body = message.body
        encoded = body.encode("utf-8", errors="surrogatepass")
        item: dict[str, Any] = {
            "event_id": _key_part(f"rejected:{message.message_id or uuid.uuid4()}"),
            "target_arn": _key_part(message.error.target_arn or "-"),
            "status": Status.REJECTED.value,
            "attempts": 0,
            "received_at": now.iso,
            "updated_at": now.iso,
            "expires_at": self._expiry(now),
            "reject_reason": reason[:1000],
            "sqs_message_id": message.message_id,
            "body_sha256": hashlib.sha256(encoded).hexdigest(),
            "body_bytes": len(encoded),
            "history": [Attempt(at=now.iso, outcome="rejected", error=reason).to_item()],
            **_dlq_fields(message.error),
        }
        if len(encoded) > REJECTED_BODY_LIMIT:
            item["body"] = encoded[:REJECTED_BODY_LIMIT].decode("utf-8", errors="ignore")
            item["body_truncated"] = True
        else:
            item["body"] = body
        return self._put_new(item)

    # --- the worker's transitions -------------------------------------------------

    def claim(self, event_id: str, target_arn: str, *, lease_seconds: float) -> LedgerItem:
        """Take the item for one attempt: `received`, due `retry_scheduled`, or a lapsed lease.

        Counts the attempt (so a crash still uses one) and returns the item with a fresh
        `claim_token`; raises `ClaimRefused` with the current item otherwise.
        """
        now = _now()
        attributes = self._update(
            event_id,
            target_arn,
            update=(
                "SET #s = :in_progress, attempts = if_not_exists(attempts, :zero) + :one, "
                "lease_until = :lease, claim_token = :token, updated_at = :now"
            ),
            condition=(
                "attribute_exists(event_id) AND (#s = :received "
                "OR (#s = :retry AND next_attempt_at <= :epoch) "
                "OR (#s = :in_progress AND lease_until < :epoch))"
            ),
            values={
                "in_progress": Status.IN_PROGRESS.value,
                "received": Status.RECEIVED.value,
                "retry": Status.RETRY_SCHEDULED.value,
                "zero": 0,
                "one": 1,
                "lease": now.epoch + lease_seconds,
                "token": uuid.uuid4().hex,
                "now": now.iso,
                "epoch": now.epoch,
            },
            refused=lambda: ClaimRefused(self.get(event_id, target_arn)),
        )
        return LedgerItem.from_item(attributes)

    def finish(
        self,
        claimed: LedgerItem,
        status: Status,
        *,
        outcome: str,
        error: str | None = None,
        next_attempt_at: float | None = None,
        task_id: str | None = None,
    ) -> LedgerItem:
        """End the attempt that `claimed` holds: to `status`, with the attempt in its history.

        Raises `StaleClaim` when the claim was lost meanwhile (another worker took over).
        """
        if status in (Status.IN_PROGRESS, Status.RECEIVED, Status.REJECTED):
            raise ValueError(f"finish() cannot move an item to {status}")
        now = _now()
        entry = Attempt(at=now.iso, outcome=outcome, error=error, task_id=task_id).to_item()
        history = [*claimed.history, entry][-HISTORY_LIMIT:]
        sets = ["#s = :status", "updated_at = :now", "history = :history"]
        values: dict[str, Any] = {
            "status": status.value,
            "now": now.iso,
            "history": history,
            "token": claimed.claim_token,
        }
        removes = ["lease_until", "claim_token"]
        if error is not None:
            sets.append("last_error = :error")
            values["error"] = error[:1000]
        if next_attempt_at is not None:
            sets.append("next_attempt_at = :next")
            values["next"] = next_attempt_at
        else:
            removes.append("next_attempt_at")
        attributes = self._update(
            claimed.event_id,
            claimed.target_arn,
            update=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            condition="claim_token = :token",
            values=values,
            refused=lambda: _stale(claimed),
        )
        return LedgerItem.from_item(attributes)

    def postpone(self, claimed: LedgerItem, *, until: float) -> None:
        """Hand a claimed item back unattempted (a wait, not a failure): its attempt is returned."""
        self._update(
            claimed.event_id,
            claimed.target_arn,
            update=(
                "SET #s = :retry, next_attempt_at = :until, attempts = attempts - :one, "
                "updated_at = :now REMOVE lease_until, claim_token"
            ),
            condition="claim_token = :token",
            values={
                "retry": Status.RETRY_SCHEDULED.value,
                "until": round(until, 3),
                "one": 1,
                "now": _now().iso,
                "token": claimed.claim_token,
            },
            refused=lambda: _stale(claimed),
        )

    def redrive(self, event_id: str, target_arn: str, *, note: str = "redrive") -> LedgerItem:
        """Put a `failed` or `exhausted` item back to `received` with a fresh attempt budget."""
        current = self.get(event_id, target_arn)
        if current is None or current.status not in REDRIVABLE_STATUSES:
            raise ClaimRefused(current)
        now = _now()
        entry = Attempt(at=now.iso, outcome=note).to_item()
        history = [*current.history, entry][-HISTORY_LIMIT:]
        attributes = self._update(
            event_id,
            target_arn,
            update=(
                "SET #s = :received, attempts = :zero, updated_at = :now, "
                "next_attempt_at = :epoch, history = :history, redrives = "
                "if_not_exists(redrives, :zero) + :one"
            ),
            condition="#s = :old AND updated_at = :old_updated",
            values={
                "received": Status.RECEIVED.value,
                "zero": 0,
                "one": 1,
                "now": now.iso,
                "epoch": now.epoch,
                "history": history,
                "old": current.status.value,
                "old_updated": current.updated_at,
            },
            refused=lambda: ClaimRefused(self.get(event_id, target_arn)),
        )
        return LedgerItem.from_item(attributes)

    # --- reading ------------------------------------------------------------------

    def get(self, event_id: str, target_arn: str) -> LedgerItem | None:
        response = self._client.get_item(
            TableName=self.table, Key=_key(event_id, target_arn), ConsistentRead=True
        )
        item = response.get("Item")
        return LedgerItem.from_item(_plain(item)) if item else None

    def items_for_event(self, event_id: str) -> list[LedgerItem]:
        """Every target's item for one event id (also finds `rejected:<message id>`)."""
        return [
            LedgerItem.from_item(item)
            for item in self._query(
                KeyConditionExpression="event_id = :e",
                ExpressionAttributeValues=_values(e=event_id),
                ConsistentRead=True,
            )
        ]

    def by_status(
        self,
        status: Status,
        *,
        updated_before: str | None = None,
        updated_after: str | None = None,
    ) -> Iterator[LedgerItem]:
        """Items of one status, oldest update first (the reconciler's and redrive's view)."""
        condition = "#s = :s"
        values: dict[str, Any] = {"s": status.value}
        if updated_before and updated_after:
            condition += " AND updated_at BETWEEN :a AND :b"
            values.update(a=updated_after, b=updated_before)
        elif updated_before:
            condition += " AND updated_at < :b"
            values["b"] = updated_before
        elif updated_after:
            condition += " AND updated_at > :a"
            values["a"] = updated_after
        for item in self._query(
            IndexName=BY_STATUS_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_values(**values),
        ):
            yield LedgerItem.from_item(item)

    def by_conversation(self, conversation_id: str) -> list[LedgerItem]:
        """Every item of one conversation (what the tracking summary is made from)."""
        return [
            LedgerItem.from_item(item)
            for item in self._query(
                IndexName=BY_CONVERSATION_INDEX,
                KeyConditionExpression="conversation_id = :c",
                ExpressionAttributeValues=_values(c=conversation_id),
            )
        ]

    def scan(self) -> Iterator[LedgerItem]:
        """Every item (for `status` and tests; the table is an operational one, not a lake)."""
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(TableName=self.table):
            for item in page.get("Items", []):
                yield LedgerItem.from_item(_plain(item))

    # --- internals ----------------------------------------------------------------

    def _put_new(self, item: dict[str, Any]) -> bool:
        try:
            self._client.put_item(
                TableName=self.table,
                Item=_typed({k: v for k, v in item.items() if v is not None}),
                ConditionExpression="attribute_not_exists(event_id)",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def _update(
        self,
        event_id: str,
        target_arn: str,
        *,
        update: str,
        condition: str,
        values: dict[str, Any],
        refused: Callable[[], Exception],
    ) -> dict[str, Any]:
        """One conditional UpdateItem; the new item, or `refused()` raised if the check fails."""
        names = {"#s": "status"} if "#s" in update or "#s" in condition else None
        try:
            response = self._client.update_item(
                TableName=self.table,
                Key=_key(event_id, target_arn),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=_values(**values),
                ReturnValues="ALL_NEW",
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise refused() from None
            raise
        return _plain(response["Attributes"])

    def count_duplicate(self, event_id: str, target_arn: str) -> LedgerItem:
        """Count one more copy of an event the ledger already has (shown by `status`)."""
        response = self._client.update_item(
            TableName=self.table,
            Key=_key(event_id, target_arn),
            UpdateExpression="ADD duplicates :one",
            ExpressionAttributeValues=_values(one=1),
            ReturnValues="ALL_NEW",
        )
        return LedgerItem.from_item(_plain(response["Attributes"]))

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(TableName=self.table, **kwargs):
            for item in page.get("Items", []):
                yield _plain(item)

    def _expiry(self, now: _Now) -> int:
        return int(now.epoch) + self.ttl_days * 86400


def create_table(client: Any, table: str) -> bool:
    """Create the ledger table, its two indexes and TTL; True if created, False if it existed.

    The same shape as `LedgerTable` in template.yaml.
    """
    try:
        client.create_table(**table_definition(table))
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        return False
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})
    client.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    return True


def table_definition(table: str) -> dict[str, Any]:
    """The CreateTable request of the ledger: keys, indexes, on-demand billing."""

    def index(name: str, partition: str) -> dict[str, Any]:
        return {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": partition, "KeyType": "HASH"},
                {"AttributeName": "updated_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    return {
        "TableName": table,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("event_id", "target_arn", "status", "updated_at", "conversation_id")
        ],
        "KeySchema": [
            {"AttributeName": "event_id", "KeyType": "HASH"},
            {"AttributeName": "target_arn", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            index(BY_STATUS_INDEX, "status"),
            index(BY_CONVERSATION_INDEX, "conversation_id"),
        ],
    }


# --- value plumbing -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Now:
    iso: str
    epoch: float


def _now() -> _Now:
    moment = datetime.now(UTC)
    return _Now(iso=moment.isoformat(timespec="milliseconds"), epoch=round(moment.timestamp(), 3))


def iso_ago(seconds: float) -> str:
    """The `updated_at` form of a moment `seconds` ago (for index range queries)."""
    moment = datetime.now(UTC) - timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds")


def _dlq_fields(error: DlqError) -> dict[str, Any]:
    return {
        "rule_arn": error.rule_arn,
        "error_code": error.error_code,
        "error_message": (error.error_message or "")[:2000] or None,
        "exhausted_retry_condition": error.exhausted_retry_condition,
        "retry_attempts": error.retry_attempts,
    }


def _key_part(value: str) -> str:
    """A value fit for a key: DynamoDB refuses keys over 1024 bytes; a digest stands in."""
    encoded = value.encode("utf-8", errors="surrogatepass")
    if len(encoded) <= 1024 and value.isprintable():
        return value
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def _stale(claimed: LedgerItem) -> StaleClaim:
    return StaleClaim(f"lost the claim on {claimed.event_id} for {claimed.target_arn}")


def _key(event_id: str, target_arn: str) -> dict[str, Any]:
    return {"event_id": {"S": event_id}, "target_arn": {"S": target_arn}}


def _values(**values: Any) -> dict[str, Any]:
    return {f":{name}": _typed_value(value) for name, value in values.items()}


def _typed(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _typed_value(value) for name, value in item.items()}


def _typed_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": _typed({k: v for k, v in value.items() if v is not None})}
    if isinstance(value, list | tuple):
        return {"L": [_typed_value(v) for v in value]}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"cannot store {type(value).__name__} in the ledger")


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _plain_value(value) for name, value in item.items()}


def _plain_value(value: Mapping[str, Any]) -> Any:
    (kind, inner), *_ = value.items()
    if kind == "N":
        number = float(inner)
        return int(number) if number.is_integer() and "." not in inner else number
    if kind == "M":
        return _plain(inner)
    if kind == "L":
        return [_plain_value(v) for v in inner]
    if kind == "NULL":
        return None
    return inner


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _is_condition_failure(exc: ClientError) -> bool:
    return bool(exc.response["Error"]["Code"] == "ConditionalCheckFailedException")
