"""What the domain asks of the broker: run an item's replay task (Celery implements it)."""

from __future__ import annotations

from typing import Protocol

from dlq.events import EventKey


class ReplayEnqueuer(Protocol):
    """Hands an item's replay to the workers, now or `countdown` seconds from now.

    `lock` is the item's `dlq.locks.lock_name`: it travels with the task, so the worker's
    first ledger request is the claim. `generation` is the item's `redriven_at` (None for
    an item never redriven): what an ordered pass recorded for another generation of the
    item is no answer for this task. `parked`: the task is a line's pass parked for the
    DLQ's drain, standing for the line's tasks that ended `parked` (`dlq.arrivals`).
    """

    def enqueue_replay(
        self,
        key: EventKey,
        *,
        lock: str | None = None,
        countdown: float = 0.0,
        generation: str | None = None,
        parked: bool = False,
    ) -> None: ...
