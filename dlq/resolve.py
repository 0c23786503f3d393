"""The resolve use case: end items without redelivering them, on an operator's word.

The operator chooses items as for a redrive (`dlq.redrive.RedriveFilter`, `select`) or
names one event; each goes to `resolved` (final: no claim takes it, the reconciler never
re-enqueues it, a replay task for it ends at once) with the operator's identity and
reason in its history. Nothing is sent. An item that changed since it was listed, or
that an attempt holds under a live lease, is left as it is, with the reason. Tracking
then writes each touched conversation's summary, `resolved` counted in it.

A resolved item is not redriven: `redrive` takes failed and exhausted items only. To
send it after all, the event must come in again (the parking queue's `unpark`, or the
DLQ).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from dlq.clock import iso
from dlq.ledger import RESOLVABLE_STATUSES, ClaimRefused, LedgerItem, LedgerStore, Status

log = logging.getLogger(__name__)


class News(Protocol):
    """Tells tracking that a conversation changed (`dlq.tracking.TrackingNews`)."""

    def mark(self, conversation_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Skipped:
    """An item left as it was, and why, in words for the operator."""

    item: LedgerItem
    reason: str


@dataclass
class ResolveResult:
    resolved: int = 0
    skipped: list[Skipped] = field(default_factory=list)


def resolve(
    ledger: LedgerStore,
    items: Iterable[LedgerItem],
    *,
    reason: str,
    operator: str,
    news: News | None = None,
    each: Callable[[LedgerItem], None] = lambda _: None,
) -> ResolveResult:
    """Resolve `items` as listed; `each` is called after every item (progress). `news`
    hears every conversation touched, once, at the end (tracking's summary)."""
    if not reason.strip():
        raise ValueError("a resolve needs a reason")
    result = ResolveResult()
    touched: set[str] = set()
    for item in items:
        try:
            ledger.resolve(item, reason=reason, operator=operator)
        except ClaimRefused as refused:
            why = why_not(item, refused.current, now=ledger.clock.now())
            result.skipped.append(Skipped(item, why))
        else:
            result.resolved += 1
            if item.conversation_id:
                touched.add(item.conversation_id)
            log.warning(
                f"resolved by {operator}, nothing sent: {reason}",
                extra={
                    "event_id": item.event_id,
                    "target_arn": item.target_arn,
                    "conversation_id": item.conversation_id,
                    "outcome": "resolved",
                },
            )
        each(item)
    for conversation_id in sorted(touched):
        _tell(news, conversation_id)
    return result


def refusal(item: LedgerItem | None, *, now: float) -> str | None:
    """Why `item` may not be resolved as it stands, or None when it may."""
    if item is None:
        return "no longer in the ledger"
    if item.status is Status.IN_PROGRESS and (item.lease_until or 0.0) >= round(now, 3):
        until = iso(item.lease_until or now)
        return f"in progress: an attempt holds it until {until} (resolve it once it ends)"
    if item.status not in RESOLVABLE_STATUSES:
        return f"{item.status.value}: nothing left to resolve"
    return None


def why_not(listed: LedgerItem, current: LedgerItem | None, *, now: float) -> str:
    """Why `listed` was not resolved, as the ledger now holds it (`current`)."""
    if current is not None and refusal(current, now=now) is None:
        return f"changed since it was listed (now {current.status.value}): list it again"
    return refusal(current, now=now) or "refused"


def _tell(news: News | None, conversation_id: str) -> None:
    if news is None:
        return
    try:
        news.mark(conversation_id)
    except Exception:
        # Bookkeeping: the reconciler's tracking catch-up writes it later.
        log.warning("could not schedule tracking", extra={"conversation_id": conversation_id})
