"""What the ledger holds: items, history entries, and the errors of a transition.

The statuses and the claim rule are `dlq.ledger.status` (re-exported here).

Also how a new item is made (`received_item`, `rejected_item`), so that the DynamoDB
store and its in-memory twin write the very same attributes.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dlq.clock import iso
from dlq.codes import failure_code
from dlq.events import DlqError, DlqMessage, EventKey, ParsedEvent
from dlq.ledger.status import CLAIM_CONDITION as CLAIM_CONDITION
from dlq.ledger.status import FINAL_STATUSES as FINAL_STATUSES
from dlq.ledger.status import IMMINENT_SECONDS as IMMINENT_SECONDS
from dlq.ledger.status import PENDING_STATUSES as PENDING_STATUSES
from dlq.ledger.status import REDRIVABLE_STATUSES as REDRIVABLE_STATUSES
from dlq.ledger.status import RESOLVABLE_STATUSES as RESOLVABLE_STATUSES
from dlq.ledger.status import Status as Status
from dlq.ledger.status import about_to_change as about_to_change
from dlq.ledger.status import check_finish_status as check_finish_status
from dlq.ledger.status import claimable as claimable
from dlq.redact import scrub

HISTORY_LIMIT = 20
#: A rejected body is kept whole up to this size; beyond it, a prefix and its digest.
REJECTED_BODY_LIMIT = 300 * 1024
#: DynamoDB refuses key attributes over this many bytes; a digest stands in.
KEY_BYTES_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class Attempt:
    """One entry of an item's bounded history."""

    at: str
    outcome: str
    error: str | None = None
    task_id: str | None = None
    #: What was sent where, for a delivery: see `Receipt`.
    sent: Receipt | None = None
    #: Anything else the attempt must explain (an ordering given up, say).
    note: str | None = None
    #: Who did it, for an operator's action (`dlq.operator`): their AWS identity or name.
    operator: str | None = None

    def to_item(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"at": self.at, "outcome": self.outcome}
        if self.error:  # scrubbed, then cut: it may quote what a target answered
            entry["error"] = scrub(self.error)[:500]
        if self.task_id:
            entry["task_id"] = self.task_id
        if self.sent is not None:
            entry.update(self.sent.to_item())
        if self.note:
            entry["note"] = scrub(self.note)[:500]
        if self.operator:
            entry["operator"] = self.operator[:300]
        return entry


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery, as the history records it.

    `delivered_to` is where the event went (after an override), `answer` what the target
    said (a message id, an execution ARN...), `route` how the destination was chosen
    (`rule`, `override`, `trusted`), `transformed` whether the rule target's input
    transformation changed the payload, `digest` the payload's SHA-256.
    """

    delivered_to: str
    answer: str | None = None
    route: str | None = None
    transformed: bool | None = None
    digest: str | None = None

    def to_item(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"delivered_to": self.delivered_to}
        if self.answer:
            entry["receipt"] = self.answer[:500]
        if self.route:
            entry["route"] = self.route
        if self.transformed is not None:
            entry["transformed"] = self.transformed
        if self.digest:
            entry["payload_digest"] = self.digest
        return entry


def route_of(key: EventKey) -> str:
    """The ledger's sort key: the (target, rule) pair that missed the event.

    The target first, so a Query on one event lists its items by target; a digest stands
    in when the two ARNs together are too long for a key.
    """
    return key_part(f"{key.target_arn} {key.rule_arn}" if key.rule_arn else key.target_arn)


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
    #: A short code of the last failure (`NotARuleTarget`, `HTTP503`...): what tracking
    #: writes onto the conversation, never the text.
    last_error_code: str | None = None
    reject_reason: str | None = None
    duplicates: int = 0
    sqs_message_id: str | None = None
    lease_until: float | None = None
    next_attempt_at: float | None = None
    claim_token: str | None = None
    #: When the item was last put back to `received` by a redrive: its age counts from here.
    redriven_at: str | None = None
    #: Where an operator's redrive routed this item (`redrive --target-override`).
    target_override: str | None = None
    #: How many times the item waited for something other than its target (Genesys
    #: down, say) without spending an attempt: the backoff between those waits.
    waits: int = 0
    history: tuple[Mapping[str, Any], ...] = ()
    route: str = ""
    #: When `forget` dropped its customer data (dlq.ledger.forgetting): never redriven.
    forgotten_at: str | None = None
    #: The body an operator supplied in place of `body` (`redrive --body-file`): what its
    #: next attempts send; `body` stays the original, byte for byte.
    edited_body: str | None = None

    @property
    def replay_body(self) -> str:
        """What an attempt sends (before the rule target's transformation)."""
        return self.edited_body if self.edited_body is not None else self.body

    @property
    def rule_arn(self) -> str | None:
        return self.dlq.rule_arn

    @property
    def redriven_untried(self) -> bool:
        """Redriven and not attempted since: its first attempt sees the world as it is
        now, not what the fleet cached about its conversation and target before."""
        return self.redriven_at is not None and self.attempts == 0

    @property
    def key(self) -> EventKey:
        """The item's idempotency key (its ledger key is `route_of(key)`)."""
        return EventKey(self.event_id, self.target_arn, self.dlq.rule_arn or "")

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
            last_error_code=item.get("last_error_code"),
            reject_reason=item.get("reject_reason"),
            duplicates=int(item.get("duplicates", 0)),
            sqs_message_id=item.get("sqs_message_id"),
            lease_until=opt_float("lease_until"),
            next_attempt_at=opt_float("next_attempt_at"),
            claim_token=item.get("claim_token"),
            redriven_at=item.get("redriven_at"),
            target_override=item.get("target_override"),
            waits=int(item.get("waits", 0)),
            history=tuple(item.get("history", ())),
            route=item.get("route", ""),
            forgotten_at=item.get("forgotten_at"),
            edited_body=item.get("edited_body"),
        )


class ClaimRefused(Exception):
    """The item could not be claimed; `current` is what the ledger holds (None if absent)."""

    def __init__(self, current: LedgerItem | None) -> None:
        status = current.status if current else "absent"
        super().__init__(f"claim refused: item is {status}")
        self.current = current


class StaleClaim(Exception):
    """The claim this worker held was lost (its lease expired and someone else took it)."""

    @classmethod
    def of(cls, claimed: LedgerItem) -> StaleClaim:
        return cls(f"lost the claim on {claimed.event_id} for {claimed.target_arn}")


def received_item(
    parsed: ParsedEvent, message: DlqMessage, *, now: float, ttl_days: int
) -> dict[str, Any]:
    """The attributes of a new `received` item (None values are not stored)."""
    event = parsed.event
    at = iso(now)
    item: dict[str, Any] = {
        "event_id": event.id,
        "route": route_of(parsed.key),
        "target_arn": parsed.key.target_arn,
        "status": Status.RECEIVED.value,
        "attempts": 0,
        "body": message.body,
        "received_at": at,
        "updated_at": at,
        "next_attempt_at": round(now, 3),
        "expires_at": expiry(now, ttl_days),
        "detail_type": event.detail_type,
        "source": event.source,
        "event_time": event.time.isoformat(),
        "conversation_id": parsed.conversation_id,
        "participant_id": parsed.participant_id,
        "correlation_id": parsed.correlation_id,
        "sqs_message_id": message.message_id,
        "history": [Attempt(at=at, outcome="received").to_item()],
        **_dlq_fields(message.error),
    }
    return _without_none(item)


def rejected_item(
    message: DlqMessage,
    reason: str,
    *,
    now: float,
    ttl_days: int,
    key: EventKey | None = None,
    error: DlqError | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """A message that cannot be replayed, with the raw body: keyed by its SQS message id,
    or by `key` when the message names the event (a custom-bus subscriber record).
    `code` says why in a word (`BusNotAllowed`...), kept as `last_error_code`."""
    at = iso(now)
    body = message.body
    encoded = body.encode("utf-8", errors="surrogatepass")
    target = key_part(message.error.target_arn or "-")
    item: dict[str, Any] = {
        "event_id": key_part(f"rejected:{message.message_id or uuid.uuid4()}"),
        "route": target,
        "target_arn": target,
        "status": Status.REJECTED.value,
        "attempts": 0,
        "received_at": at,
        "updated_at": at,
        "expires_at": expiry(now, ttl_days),
        "reject_reason": reason[:1000],
        "last_error_code": failure_code(code),
        "sqs_message_id": message.message_id,
        "body_sha256": hashlib.sha256(encoded).hexdigest(),
        "body_bytes": len(encoded),
        "history": [Attempt(at=at, outcome="rejected", error=reason).to_item()],
        **_dlq_fields(error or message.error),
    }
    if key is not None:
        item.update(
            event_id=key_part(key.event_id),
            route=route_of(key),
            target_arn=key_part(key.target_arn),
        )
    if len(encoded) > REJECTED_BODY_LIMIT:
        item["body"] = encoded[:REJECTED_BODY_LIMIT].decode("utf-8", errors="ignore")
        item["body_truncated"] = True
    else:
        item["body"] = body
    return _without_none(item)


def with_history(item: LedgerItem, entry: Attempt) -> list[dict[str, Any]]:
    """The item's history with `entry` added, bounded to the newest `HISTORY_LIMIT`."""
    return [*(dict(h) for h in item.history), entry.to_item()][-HISTORY_LIMIT:]


#: The history outcome of a wait that spent no attempt (`LedgerStore.postpone` with a reason).
WAITING = "waiting"


def with_wait(item: LedgerItem, entry: Attempt) -> list[dict[str, Any]]:
    """The history with a wait added; a run of waits for the same reason is one entry
    (its latest time, when the run began and a count), so a long outage does not push the
    attempts out and `inspect` can say how long the item waited."""
    history = [dict(h) for h in item.history]
    last = history[-1] if history else None
    if last is not None and last.get("outcome") == WAITING and last.get("error") == entry.error:
        since = last.get("since") or last.get("at")
        history[-1] = {**entry.to_item(), "times": int(last.get("times", 1)) + 1, "since": since}
        return history
    return [*history, entry.to_item()][-HISTORY_LIMIT:]


def expiry(now: float, ttl_days: int) -> int:
    """The DynamoDB TTL attribute of an item written at `now`."""
    return int(now) + ttl_days * 86400


def key_part(value: str) -> str:
    """A value fit for a key: DynamoDB refuses keys over 1024 bytes; a digest stands in."""
    encoded = value.encode("utf-8", errors="surrogatepass")
    if len(encoded) <= KEY_BYTES_LIMIT and value.isprintable():
        return value
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def _dlq_fields(error: DlqError) -> dict[str, Any]:
    return {
        "rule_arn": error.rule_arn,
        "error_code": error.error_code,
        # EventBridge's message may quote what the target answered it.
        "error_message": scrub(error.error_message or "")[:2000] or None,
        "exhausted_retry_condition": error.exhausted_retry_condition,
        "retry_attempts": error.retry_attempts,
    }


def _without_none(item: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in item.items() if value is not None}


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None
