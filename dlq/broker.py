"""What the domain asks of the broker: run an item's replay task (Celery implements it)."""

from __future__ import annotations

from typing import Protocol

from dlq.events import EventKey


class ReplayEnqueuer(Protocol):
    """Hands an item's replay to the workers, now or `countdown` seconds from now.

    `lock` is the item's `dlq.locks.lock_name`: it travels with the task, so the worker's
    first ledger request is the claim.
    """

    def enqueue_replay(
        self, key: EventKey, *, lock: str | None = None, countdown: float = 0.0
    ) -> None: ...
