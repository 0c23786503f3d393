"""The ledger in memory: the same conditional transitions as DynamoDB, for unit tests.

A first-class stand-in (like a stub broker): the contract tests in
`tests/test_ledger_contract.py` run against this and against DynamoDB (moto), so the two
cannot drift. Items are stored as the plain attribute maps DynamoDB would hold; every
read returns a copy, and one lock makes each transition atomic, as a conditional write is.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from dlq.clock import SYSTEM_CLOCK, Clock, iso
from dlq.codes import failure_code
from dlq.events import DlqError, DlqMessage, EventKey, ParsedEvent
from dlq.ledger.changes import Change
from dlq.ledger.forgetting import (
    FORGOTTEN_ATTRIBUTES,
    check_forgettable,
    forgotten_history,
)
from dlq.ledger.model import (
    WAITING,
    Attempt,
    ClaimRefused,
    LedgerItem,
    Receipt,
    StaleClaim,
    Status,
    check_finish_status,
    claimable,
    received_item,
    rejected_item,
    route_of,
    with_history,
    with_wait,
)
from dlq.ledger.moves import NO_MOVES, StatusMoves
from dlq.ledger.redriving import check_redrivable, redrive_change
from dlq.ledger.resolving import resolve_change
from dlq.redact import scrub

Item = dict[str, Any]


class MemoryLedger:
    """Implements `LedgerStore` on a dict; counts requests like the DynamoDB client would."""

    def __init__(
        self, *, ttl_days: int = 90, clock: Clock = SYSTEM_CLOCK, moves: StatusMoves = NO_MOVES
    ) -> None:
        self.ttl_days = ttl_days
        self._clock = clock
        self._moves = moves
        self._items: dict[tuple[str, str], Item] = {}
        self._lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        return self._clock

    # --- ingest -------------------------------------------------------------------

    def put_received(self, parsed: ParsedEvent, message: DlqMessage) -> LedgerItem | None:
        item = received_item(parsed, message, now=self._clock.now(), ttl_days=self.ttl_days)
        if self._put_new(item):
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
        return self._put_new(
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

    def count_duplicate(self, key: EventKey) -> LedgerItem:
        def count(item: Item) -> None:
            item["duplicates"] = int(item.get("duplicates", 0)) + 1

        return self._update(
            key.event_id,
            route_of(key),
            condition=lambda item: True,
            change=count,
            refused=lambda _: ClaimRefused(None),
        )

    # --- the worker's transitions -------------------------------------------------

    def claim(self, key: EventKey, *, lease_seconds: float) -> LedgerItem:
        now = self._clock.now()
        epoch = round(now, 3)  # what the conditions compare; `updated_at` is `iso(now)`

        def can_claim(item: Item) -> bool:
            return claimable(
                item.get("status"),
                next_attempt_at=_number(item.get("next_attempt_at")),
                lease_until=_number(item.get("lease_until")),
                now=epoch,
            )

        def claim(item: Item) -> None:
            item.update(
                status=Status.IN_PROGRESS.value,
                attempts=int(item.get("attempts", 0)) + 1,
                lease_until=epoch + lease_seconds,
                claim_token=uuid.uuid4().hex,
                updated_at=iso(now),
            )

        return self._update(
            key.event_id,
            route_of(key),
            condition=can_claim,
            change=claim,
            refused=lambda current: ClaimRefused(current),
        )

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

        def finish(item: Item) -> None:
            item.update(status=status.value, updated_at=at, history=with_history(claimed, entry))
            for name in ("lease_until", "claim_token", "next_attempt_at"):
                item.pop(name, None)
            if error is not None:
                item["last_error"] = scrub(error)[:1000]
                if status is Status.REJECTED:
                    item["reject_reason"] = item["last_error"]
            if error_code:
                item["last_error_code"] = failure_code(error_code)
            if next_attempt_at is not None:
                item["next_attempt_at"] = next_attempt_at

        return self._update(
            claimed.event_id,
            claimed.route,
            condition=_holds(claimed),
            change=finish,
            refused=lambda _: StaleClaim.of(claimed),
        )

    def postpone(
        self,
        claimed: LedgerItem,
        *,
        until: float,
        reason: str | None = None,
        code: str | None = None,
    ) -> None:
        now = self._clock.now()

        def postpone(item: Item) -> None:
            item.update(
                status=Status.RETRY_SCHEDULED.value,
                next_attempt_at=round(until, 3),
                attempts=int(item["attempts"]) - 1,
                updated_at=iso(now),
            )
            if reason is not None:
                item.update(
                    waits=int(item.get("waits", 0)) + 1,
                    last_error=reason,
                    last_error_code=failure_code(code),
                    history=with_wait(claimed, Attempt(at=iso(now), outcome=WAITING, error=reason)),
                )
            item.pop("lease_until", None)
            item.pop("claim_token", None)

        self._update(
            claimed.event_id,
            claimed.route,
            condition=_holds(claimed),
            change=postpone,
            refused=lambda _: StaleClaim.of(claimed),
        )

    def redrive(
        self,
        key: EventKey,
        *,
        note: str = "redrive",
        target_override: str | None = None,
        operator: str | None = None,
        edited_body: str | None = None,
    ) -> LedgerItem:
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
        now = self._clock.now()
        return self._change(resolve_change(listed, now=now, reason=reason, operator=operator))

    def _change(self, change: Change) -> LedgerItem:
        return self._update(
            change.listed.event_id,
            change.listed.route,
            condition=change.holds,
            change=change.apply,
            refused=lambda found: ClaimRefused(found),
        )

    def forget(self, listed: LedgerItem, *, note: str = "forgotten") -> LedgerItem:
        check_forgettable(listed)
        at = iso(self._clock.now())

        def forget(item: Item) -> None:
            for name in FORGOTTEN_ATTRIBUTES:
                item.pop(name, None)
            item.update(
                history=forgotten_history(listed, Attempt(at=at, outcome=note)), forgotten_at=at
            )

        return self._update(
            listed.event_id,
            listed.route,
            condition=lambda item: _unchanged_since(listed, item),
            change=forget,
            refused=lambda found: ClaimRefused(found),
        )

    # --- reading ------------------------------------------------------------------

    def get(self, key: EventKey) -> LedgerItem | None:
        with self._lock:
            item = self._items.get((key.event_id, route_of(key)))
            return LedgerItem.from_item(copy.deepcopy(item)) if item else None

    def items_for_event(self, event_id: str) -> list[LedgerItem]:
        return [
            LedgerItem.from_item(item)
            for item in self._select(lambda item: item["event_id"] == event_id, "route")
        ]

    def by_status(
        self,
        status: Status,
        *,
        updated_before: str | None = None,
        updated_after: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> Iterator[LedgerItem]:
        def wanted(item: Item) -> bool:
            updated = str(item.get("updated_at", ""))
            if item.get("status") != status.value:
                return False
            if updated_before and updated_after:  # BETWEEN is inclusive
                return updated_after <= updated <= updated_before
            if updated_before:
                return bool(updated < updated_before)
            if updated_after:
                return bool(updated > updated_after)
            return True

        chosen = self._select(wanted, "updated_at")
        if newest_first:
            chosen.reverse()
        for item in chosen[:limit]:
            yield LedgerItem.from_item(item)

    def by_conversation(self, conversation_id: str) -> list[LedgerItem]:
        return [
            LedgerItem.from_item(item)
            for item in self._select(
                lambda item: item.get("conversation_id") == conversation_id, "updated_at"
            )
        ]

    def scan(self) -> Iterator[LedgerItem]:
        for item in self._select(lambda item: True, "event_id"):
            yield LedgerItem.from_item(item)

    def count_by_status(self, status: Status) -> int:
        return len(self._select(lambda item: item.get("status") == status.value, "updated_at"))

    # --- internals ----------------------------------------------------------------

    def _put_new(self, item: Item) -> bool:
        key = (item["event_id"], item["route"])
        with self._lock:
            if key in self._items:
                return False
            self._items[key] = copy.deepcopy(item)
        self._moves.moved(None, Status(item["status"]))
        return True

    def _update(
        self,
        event_id: str,
        route: str,
        *,
        condition: Callable[[Item], bool],
        change: Callable[[Item], None],
        refused: Callable[[LedgerItem | None], Exception],
    ) -> LedgerItem:
        """One conditional update under the lock; `refused(current)` raised if the check fails."""
        with self._lock:
            item = self._items.get((event_id, route))
            if item is None or not condition(item):
                current = LedgerItem.from_item(copy.deepcopy(item)) if item else None
            else:
                old = Status(item["status"])
                change(item)
                current = LedgerItem.from_item(copy.deepcopy(item))
                if current.status is not old:
                    self._moves.moved(old, current.status)
                return current
        raise refused(current)

    def _select(self, wanted: Callable[[Item], bool], order: str) -> list[Item]:
        """The wanted items by `order`, ties in key order (as moto's queries and scans)."""
        with self._lock:
            chosen = [copy.deepcopy(i) for i in self._items.values() if wanted(i)]
        return sorted(
            chosen,
            key=lambda item: (str(item.get(order, "")), item["event_id"], item["route"]),
        )


def _unchanged_since(listed: LedgerItem, item: Item) -> bool:
    """The condition of an operator's change: the item is as listed, and not forgotten."""
    return (
        item.get("status") == listed.status
        and item.get("updated_at") == listed.updated_at
        and "forgotten_at" not in item
    )


def _holds(claimed: LedgerItem) -> Callable[[Item], bool]:
    """The condition of every write that ends a claim: the claim token is still ours."""
    token = claimed.claim_token
    return lambda item: token is not None and item.get("claim_token") == token


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
