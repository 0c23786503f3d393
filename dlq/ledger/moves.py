"""Who is told of each status change the ledger writes: maintained counts, not scans.

Both stores (`Ledger`, `MemoryLedger`) call `moved(old, new)` after every write that
changes an item's status, once the write succeeded: a new item (`old` None), a claim (its
status before, `in_progress` again when a lapsed lease is taken over), a finish, a
postpone, a redrive, a resolution. Nothing else changes a status, except DynamoDB's TTL
expiry, which nobody is told of: counts kept from the moves are reconciled with the table
now and then (`dlq.metrics.tally`).
"""

from __future__ import annotations

from typing import Protocol

from dlq.ledger.status import Status


class StatusMoves(Protocol):
    """Told that one item went from `old` (None: a new item) to `new`."""

    def moved(self, old: Status | None, new: Status) -> None: ...


class _NoMoves:
    def moved(self, old: Status | None, new: Status) -> None:
        return None


#: The default: nobody is told.
NO_MOVES: StatusMoves = _NoMoves()
