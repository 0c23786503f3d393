"""What `LedgerStore.redrive` does to an item's last error, stated once for both stores.

A redriven item starts again: its last error and code belonged to the attempts before
the redrive, so they leave the item (what it shows as its last error is then its new
attempts') and stay in the redrive's history entry, as the error it was redriven from.
"""

from __future__ import annotations

from typing import Any

from dlq.codes import failure_code
from dlq.ledger.model import HISTORY_LIMIT, Attempt, LedgerItem

#: The item's attributes a redrive removes.
REDRIVE_CLEARS = ("last_error", "last_error_code")


def redriven_history(item: LedgerItem, *, note: str, at: str) -> list[dict[str, Any]]:
    """The history with the redrive's entry added: its note, and the error it leaves behind."""
    entry = Attempt(at=at, outcome=note, error=item.last_error).to_item()
    if item.last_error_code:
        entry["error_code"] = failure_code(item.last_error_code)
    return [*(dict(h) for h in item.history), entry][-HISTORY_LIMIT:]
