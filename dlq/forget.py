"""The forget use case: drop what the ledger keeps of a customer, keep what it counted.

An operator chooses a conversation, or everything last updated before a time (or both);
each chosen item that reached a final status loses its body, its error and reject texts
and its history's texts (`LedgerStore.forget`), and keeps its status, attempts, codes and
times, so `status` counts the same afterwards. An item still pending keeps its body (its
replay needs it) and is reported instead; an item that changed since it was listed is
left alone. A rejected message names no conversation in the ledger's index, so for a
conversation the rejected items whose raw body mentions its id are chosen too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dlq.ledger import (
    FINAL_STATUSES,
    PENDING_STATUSES,
    ClaimRefused,
    LedgerItem,
    LedgerStore,
    Status,
)


@dataclass(frozen=True, slots=True)
class ForgetFilter:
    """Which items to forget: those of a conversation, those last updated before a time
    (an ISO 8601 UTC text, as the ledger writes `updated_at`), or both at once."""

    conversation_id: str | None = None
    updated_before: str | None = None

    def __post_init__(self) -> None:
        if not self.conversation_id and not self.updated_before:
            raise ValueError("name a conversation or a time: forget never takes everything")


@dataclass(frozen=True, slots=True)
class Chosen:
    """What a filter found: the items to forget, and those it must leave (still pending)."""

    forgettable: list[LedgerItem]
    pending: list[LedgerItem]


@dataclass
class ForgetResult:
    forgotten: int = 0
    #: Changed since they were listed (a late outcome, a redrive): left alone.
    skipped: list[LedgerItem] = field(default_factory=list)


def select(ledger: LedgerStore, chosen: ForgetFilter) -> Chosen:
    """The items `chosen` names, not yet forgotten: final ones to forget, pending ones."""
    found = {(i.event_id, i.route): i for i in _candidates(ledger, chosen)}
    items = sorted(found.values(), key=lambda i: (i.updated_at, i.event_id, i.route))
    wanted = [
        i
        for i in items
        if i.forgotten_at is None
        and (chosen.updated_before is None or i.updated_at < chosen.updated_before)
    ]
    return Chosen(
        forgettable=[i for i in wanted if i.status in FINAL_STATUSES],
        pending=[i for i in wanted if i.status not in FINAL_STATUSES],
    )


def forget(
    ledger: LedgerStore,
    items: list[LedgerItem],
    *,
    note: str = "forgotten by operator",
    each: Callable[[LedgerItem], None] = lambda _: None,
) -> ForgetResult:
    """Forget `items`; `each` is called after every item (progress)."""
    result = ForgetResult()
    for item in items:
        try:
            ledger.forget(item, note=note)
        except ClaimRefused:
            result.skipped.append(item)
        else:
            result.forgotten += 1
        each(item)
    return result


def _candidates(ledger: LedgerStore, chosen: ForgetFilter) -> Iterator[LedgerItem]:
    if chosen.conversation_id:
        yield from ledger.by_conversation(chosen.conversation_id)
        # A rejected message is kept by its SQS message id, under no conversation.
        for item in ledger.by_status(Status.REJECTED, updated_before=chosen.updated_before):
            if chosen.conversation_id in item.body:
                yield item
        return
    for status in (*sorted(FINAL_STATUSES), *sorted(PENDING_STATUSES)):
        yield from ledger.by_status(status, updated_before=chosen.updated_before)
