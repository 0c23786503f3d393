"""What `LedgerStore.forget` drops and keeps, stated once for both stores.

An item that reached a final status loses the texts that may hold customer data (its
body and any edited body, last error, EventBridge's error message, reject reason) and
each history entry's texts (errors, notes, receipts); its status, attempts, codes and
times stay, so every count does too.
"""

from __future__ import annotations

from typing import Any

from dlq.ledger.model import FINAL_STATUSES, HISTORY_LIMIT, Attempt, ClaimRefused, LedgerItem

#: The item's attributes `forget` removes...
FORGOTTEN_ATTRIBUTES = (
    "body",
    "body_truncated",
    "edited_body",
    "last_error",
    "error_message",
    "reject_reason",
)
#: ...and the only facts it keeps of each history entry.
HISTORY_FACTS = frozenset(
    {
        "at",
        "outcome",
        "task_id",
        "delivered_to",
        "route",
        "transformed",
        "payload_digest",
        "times",
        "since",  # when a run of waits began
        "error_code",  # a redrive's: the code of the error it left behind
        "operator",  # who acted: an identity, not the customer's data
        "edited_body_digest",
    }
)


def check_forgettable(item: LedgerItem) -> None:
    """Only an item that reached a final status may be forgotten (a pending one still
    needs its body), and only once; `ClaimRefused` otherwise."""
    if item.status not in FINAL_STATUSES or item.forgotten_at is not None:
        raise ClaimRefused(item)


def forgotten_history(item: LedgerItem, entry: Attempt) -> list[dict[str, Any]]:
    """The history with only its `HISTORY_FACTS` left, and `entry` (the forgetting) added."""
    kept = [{k: v for k, v in h.items() if k in HISTORY_FACTS} for h in item.history]
    return [*kept, entry.to_item()][-HISTORY_LIMIT:]
