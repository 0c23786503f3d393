"""The ledger on DynamoDB: one item per (event id, rule, target), every transition conditional.

    received --claim--> in_progress --ok--> replayed
                            |  +--retryable--> retry_scheduled --claim--> in_progress
                            +--fatal--> failed
                            +--attempts or age used up--> exhausted
                            +--outside the trust boundary (rule's pattern)--> rejected
    (bad input at ingest) --> rejected          failed | exhausted --redrive--> received
    (not replayed, rejected or resolved) --resolve (an operator)--> resolved

`LedgerStore` is the interface the use cases depend on; `Ledger` implements it on a
boto3 DynamoDB client and `dlq.ledger.memory.MemoryLedger` in memory, and one suite of
contract tests holds both to the same behaviour.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from botocore.exceptions import ClientError

from dlq.clock import SYSTEM_CLOCK, Clock, iso
from dlq.codes import failure_code
from dlq.events import DlqError, DlqMessage, EventKey, ParsedEvent
from dlq.ledger import marshal
from dlq.ledger.changes import Change
from dlq.ledger.forgetting import (
    FORGOTTEN_ATTRIBUTES,
    check_forgettable,
    forgotten_history,
)
from dlq.ledger.model import (
    CLAIM_CONDITION,
    WAITING,
    Attempt,
    ClaimRefused,
    LedgerItem,
    Receipt,
    StaleClaim,
    Status,
    check_finish_status,
    received_item,
    rejected_item,
    route_of,
    with_history,
    with_wait,
)
from dlq.ledger.moves import NO_MOVES, StatusMoves
from dlq.ledger.redriving import check_redrivable, redrive_change
from dlq.ledger.resolving import resolve_change
from dlq.ledger.writes import TableWrites, is_condition_failure
from dlq.redact import scrub


class Ledger(TableWrites):
    """The ledger table, through a boto3 DynamoDB client (low-level, typed attribute values)."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        ttl_days: int = 90,
        clock: Clock = SYSTEM_CLOCK,
        moves: StatusMoves = NO_MOVES,
    ) -> None:
        super().__init__(client, table)
        self.ttl_days = ttl_days
        self._clock = clock
        self._moves = moves

    @property
    def clock(self) -> Clock:
        return self._clock

    # --- ingest -------------------------------------------------------------------

    def put_received(self, parsed: ParsedEvent, message: DlqMessage) -> LedgerItem | None:
        """Write a new `received` item; None when the key is new, else the existing item
        (left alone: `count_duplicate` records EventBridge's duplicates)."""
        item = received_item(parsed, message, now=self._clock.now(), ttl_days=self.ttl_days)
        if self._put_new(item):
            self._moves.moved(None, Status.RECEIVED)
            return None
        return self.get(parsed.key)

    def put_rejected(
        self,
        message: DlqMessage,
        reason: str,
        *,
        key: EventKey | None = None,
        error: DlqError | None = None,
        code: str | None = None,
    ) -> bool:
        """Keep a message that cannot be replayed, with its reason and raw body.

        Keyed by the SQS message id (a bad message may have no event id), so the same
        message received twice is one item. True when it was new.
        """
        new = self._put_new(
            rejected_item(
                message,
                reason,
                now=self._clock.now(),
                ttl_days=self.ttl_days,
                key=key,
                error=error,
                code=code,
            )
        )
        if new:
            self._moves.moved(None, Status.REJECTED)
        return new

    def count_duplicate(self, key: EventKey) -> LedgerItem:
        """Count one more copy of an event the ledger already has (shown by `status`).

        Conditional on the item existing, so a count never creates a key-only item;
        `ClaimRefused(None)` when there is none.
        """
        attributes = self._update(
            key.event_id,
            route_of(key),
            update="ADD duplicates :one",
            condition="attribute_exists(event_id)",
            values={"one": 1},
            refused=lambda _: ClaimRefused(None),
        )
        return LedgerItem.from_item(attributes)

    # --- the worker's transitions -------------------------------------------------

    def claim(self, key: EventKey, *, lease_seconds: float) -> LedgerItem:
        """Take the item for one attempt: `received`, due `retry_scheduled`, or a lapsed lease.

        Counts the attempt (so a crash still uses one) and returns the item with a fresh
        `claim_token`; raises `ClaimRefused` with the current item otherwise. DynamoDB
        answers with the item as it was (its status is the move's origin), and the claim's
        own writes are applied to it here: the same item as a read after the write.
        """
        now = self._clock.now()
        sets = {
            "status": Status.IN_PROGRESS.value,
            "lease_until": round(now, 3) + lease_seconds,
            "claim_token": uuid.uuid4().hex,
            "updated_at": iso(now),
        }
        old = self._update(
            key.event_id,
            route_of(key),
            update=(
                "SET #s = :in_progress, attempts = if_not_exists(attempts, :zero) + :one, "
                "lease_until = :lease, claim_token = :token, updated_at = :now"
            ),
            condition=CLAIM_CONDITION,
            values={
                "in_progress": sets["status"],
                "received": Status.RECEIVED.value,
                "retry": Status.RETRY_SCHEDULED.value,
                "zero": 0,
                "one": 1,
                "lease": sets["lease_until"],
                "token": sets["claim_token"],
                "now": sets["updated_at"],
                "epoch": round(now, 3),
            },
            refused=lambda current: ClaimRefused(current if current else self.get(key)),
            old_on_refusal=True,
            returns="ALL_OLD",
        )
        if old["status"] != Status.IN_PROGRESS:  # else a lapsed lease taken over
            self._moves.moved(Status(old["status"]), Status.IN_PROGRESS)
        return LedgerItem.from_item({**old, **sets, "attempts": int(old.get("attempts", 0)) + 1})

    def finish(
        self,
        claimed: LedgerItem,
        status: Status,
        *,
        outcome: str,
        error: str | None = None,
        next_attempt_at: float | None = None,
        task_id: str | None = None,
        sent: Receipt | None = None,
        error_code: str | None = None,
        note: str | None = None,
    ) -> LedgerItem:
        """End the attempt that `claimed` holds: to `status`, with the attempt in its history.

        Raises `StaleClaim` when the claim was lost meanwhile (another worker took over).
        Answers `claimed` with this write applied (DynamoDB returns nothing: the claim holds
        the item, and only `count_duplicate` may have written to it since).
        """
        check_finish_status(status)
        at = iso(self._clock.now())
        entry = Attempt(
            at=at,
            outcome=outcome,
            error=error,
            task_id=task_id,
            sent=sent,
            note=note,
        )
        sets = ["#s = :status", "updated_at = :now", "history = :history"]
        values: dict[str, Any] = {
            "status": status.value,
            "now": at,
            "history": with_history(claimed, entry),
            "token": claimed.claim_token,
        }
        removes = ["lease_until", "claim_token"]
        finished: dict[str, Any] = {
            "status": status,
            "updated_at": at,
            "history": tuple(values["history"]),
            "lease_until": None,
            "claim_token": None,
            "next_attempt_at": next_attempt_at,
        }
        if error is not None:
            sets.append("last_error = :error")
            values["error"] = finished["last_error"] = scrub(error)[:1000]  # may quote a target
            if status is Status.REJECTED:  # the worker's verdict: the trust boundary
                sets.append("reject_reason = :error")
                finished["reject_reason"] = values["error"]
        if error_code:
            sets.append("last_error_code = :code")
            values["code"] = finished["last_error_code"] = failure_code(error_code)
        if next_attempt_at is not None:
            sets.append("next_attempt_at = :next")
            values["next"] = next_attempt_at
        else:
            removes.append("next_attempt_at")
        self._update(
            claimed.event_id,
            claimed.route,
            update=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            condition="claim_token = :token",
            values=values,
            refused=lambda _: StaleClaim.of(claimed),
            returns="NONE",
        )
        self._moves.moved(Status.IN_PROGRESS, status)
        return dataclasses.replace(claimed, **finished)

    def postpone(
        self,
        claimed: LedgerItem,
        *,
        until: float,
        reason: str | None = None,
        code: str | None = None,
    ) -> None:
        """Hand a claimed item back unattempted (a wait, not a failure): its attempt is
        returned; a wait with a `reason` is written to the history and counted."""
        now = iso(self._clock.now())
        waited = ""
        extra: dict[str, Any] = {}
        if reason is not None:
            waited = (
                ", waits = if_not_exists(waits, :zero) + :one, last_error = :error, "
                "last_error_code = :code, history = :history"
            )
            extra = {
                "zero": 0,
                "error": reason,
                "code": failure_code(code),
                "history": with_wait(claimed, Attempt(at=now, outcome=WAITING, error=reason)),
            }
        self._update(
            claimed.event_id,
            claimed.route,
            update=(
                "SET #s = :retry, next_attempt_at = :until, attempts = attempts - :one, "
                f"updated_at = :now{waited} REMOVE lease_until, claim_token"
            ),
            condition="claim_token = :token",
            values={
                "retry": Status.RETRY_SCHEDULED.value,
                "until": round(until, 3),
                "one": 1,
                "now": now,
                "token": claimed.claim_token,
                **extra,
            },
            refused=lambda _: StaleClaim.of(claimed),
            returns="NONE",
        )
        self._moves.moved(Status.IN_PROGRESS, Status.RETRY_SCHEDULED)

    def redrive(
        self,
        key: EventKey,
        *,
        note: str = "redrive",
        target_override: str | None = None,
        operator: str | None = None,
        edited_body: str | None = None,
    ) -> LedgerItem:
        """Put a `failed` or `exhausted` item back to `received` with a fresh attempt budget
        (`dlq.ledger.redriving`: what it writes, the override, the edited body)."""
        current = check_redrivable(self.get(key))
        return self._change(
            redrive_change(
                current,
                now=self._clock.now(),
                note=note,
                target_override=target_override,
                operator=operator,
                edited_body=edited_body,
            )
        )

    def resolve(self, listed: LedgerItem, *, reason: str, operator: str) -> LedgerItem:
        """End `listed` as `resolved`, nothing sent (`dlq.ledger.resolving`)."""
        now = self._clock.now()
        return self._change(resolve_change(listed, now=now, reason=reason, operator=operator))

    def _change(self, change: Change) -> LedgerItem:
        """An operator's change, written only if the item is as it was listed."""
        update, condition, names, values = change.expression()
        listed = change.listed
        try:
            response = self._client.update_item(
                TableName=self.table,
                Key=marshal.key(listed.event_id, listed.route),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=marshal.values(**values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                raise ClaimRefused(self._stored(listed.event_id, listed.route)) from None
            raise
        self._moves.moved(listed.status, Status(change.sets["status"]))
        return LedgerItem.from_item(marshal.plain(response["Attributes"]))

    def forget(self, listed: LedgerItem, *, note: str = "forgotten") -> LedgerItem:
        """Drop what a final item holds of the customer; its status, attempts, codes and
        times stay (`LedgerStore.forget`). Conditional on the item as `listed`."""
        check_forgettable(listed)
        now = iso(self._clock.now())
        attributes = self._update(
            listed.event_id,
            listed.route,
            update=(
                "SET history = :history, forgotten_at = :now "
                f"REMOVE {', '.join(FORGOTTEN_ATTRIBUTES)}"
            ),
            condition=(
                "#s = :old AND updated_at = :old_updated AND attribute_not_exists(forgotten_at)"
            ),
            values={
                "history": forgotten_history(listed, Attempt(at=now, outcome=note)),
                "now": now,
                "old": listed.status.value,
                "old_updated": listed.updated_at,
            },
            refused=lambda current: ClaimRefused(
                current or self._stored(listed.event_id, listed.route)
            ),
            old_on_refusal=True,
        )
        return LedgerItem.from_item(attributes)
