"""What `LedgerStore.resolve` writes, stated once for both stores.

An operator ends an item without a delivery: it goes to `resolved` (final: no claim
takes it, the reconciler never re-enqueues it, and a replay task for it ends at once),
with the operator and their reason in its history. Nothing is sent. Its last error and
code stay, as what it was resolved from. An item in progress is resolved only once its
lease lapsed: an attempt under way may be delivering it.
"""

from __future__ import annotations

from typing import Any

from dlq.clock import iso
from dlq.ledger.changes import Change
from dlq.ledger.model import HISTORY_LIMIT, Attempt, ClaimRefused, LedgerItem
from dlq.ledger.status import RESOLVABLE_STATUSES, Status

#: The history outcome of a resolution.
RESOLVED = Status.RESOLVED.value
#: What a resolution removes: the claim and the next attempt (no attempt follows).
RESOLVE_CLEARS = ("lease_until", "claim_token", "next_attempt_at")


def live_lease(item: LedgerItem, now: float) -> bool:
    """Whether an attempt holds `item` at `now` (its lease has not lapsed)."""
    return item.status is Status.IN_PROGRESS and (item.lease_until or 0.0) >= round(now, 3)


def resolve_change(listed: LedgerItem, *, now: float, reason: str, operator: str) -> Change:
    """The resolution of `listed`; `ClaimRefused` with it when it may not be resolved (a
    status other than `RESOLVABLE_STATUSES`, an attempt under way)."""
    if listed.status not in RESOLVABLE_STATUSES or live_lease(listed, now):
        raise ClaimRefused(listed)
    at = iso(now)
    entry = Attempt(at=at, outcome=RESOLVED, note=reason, operator=operator).to_item()
    history: list[dict[str, Any]] = [*(dict(h) for h in listed.history), entry][-HISTORY_LIMIT:]
    return Change(
        listed,
        {"status": RESOLVED, "updated_at": at, "history": history},
        removes=RESOLVE_CLEARS,
        no_live_lease_at=round(now, 3),
        forgotten_too=True,
    )
