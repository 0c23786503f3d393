"""The ledger as the use cases see it: the contract both stores keep (`Ledger`, `MemoryLedger`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from dlq.clock import Clock
from dlq.events import DlqError, DlqMessage, EventKey, ParsedEvent
from dlq.ledger.model import LedgerItem, Receipt, Status


class LedgerStore(Protocol):
    """What the use cases need of the ledger."""

    @property
    def clock(self) -> Clock: ...

    def put_received(self, parsed: ParsedEvent, message: DlqMessage) -> LedgerItem | None: ...

    def put_rejected(
        self,
        message: DlqMessage,
        reason: str,
        *,
        key: EventKey | None = None,
        error: DlqError | None = None,
        code: str | None = None,
    ) -> bool: ...

    def count_duplicate(self, key: EventKey) -> LedgerItem: ...

    def claim(self, key: EventKey, *, lease_seconds: float) -> LedgerItem: ...

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
    ) -> LedgerItem: ...

    def postpone(
        self,
        claimed: LedgerItem,
        *,
        until: float,
        reason: str | None = None,
        code: str | None = None,
    ) -> None:
        """Hand a claimed item back unattempted: its attempt is returned. With `reason`
        (a wait for Genesys, say, not a budget turn) the wait is written to the history
        and the last error, and counted in `waits`."""
        ...

    def redrive(
        self,
        key: EventKey,
        *,
        note: str = "redrive",
        target_override: str | None = None,
        operator: str | None = None,
        edited_body: str | None = None,
    ) -> LedgerItem:
        """A failed or exhausted item back to `received` with a fresh attempt budget; its
        last error and code move to the redrive's history entry, with the `operator`, and
        `edited_body` (if given) is what it sends from now on (`dlq.ledger.redriving`)."""
        ...

    def resolve(self, listed: LedgerItem, *, reason: str, operator: str) -> LedgerItem:
        """End an item `resolved` without sending anything, the `operator` and `reason` in
        its history (`dlq.ledger.resolving`). `ClaimRefused` with the item as it stands
        when it may not be resolved (replayed, rejected or resolved already; in progress
        under a live lease) or changed since it was `listed`."""
        ...

    def forget(self, listed: LedgerItem, *, note: str = "forgotten") -> LedgerItem:
        """Drop what a final item holds of the customer: its body, its error and reject
        texts, and every history entry's texts (`HISTORY_FACTS` stay), with `note` added
        to the history. Its status, attempts, codes and times stay as they are, so every
        count does too. `ClaimRefused` with the item when it is not final, was forgotten
        already, or changed since it was `listed`."""
        ...

    def get(self, key: EventKey) -> LedgerItem | None: ...

    def items_for_event(self, event_id: str) -> list[LedgerItem]: ...

    def by_status(
        self,
        status: Status,
        *,
        updated_before: str | None = None,
        updated_after: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> Iterator[LedgerItem]: ...

    def by_conversation(self, conversation_id: str) -> list[LedgerItem]: ...

    def scan(self) -> Iterator[LedgerItem]: ...
