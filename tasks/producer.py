"""The ingest's side of the broker: enqueue replays by task name, with only the key."""

from __future__ import annotations

from typing import Any

from celery import Celery

from dlq.events import EventKey
from tasks.application import REPLAY_TASK


class CeleryEnqueuer:
    """Implements `dlq.ingest.Enqueuer` (and the reconciler's re-enqueue) over Celery."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def enqueue_replay(self, key: EventKey, *, countdown: float | None = None) -> None:
        options: dict[str, Any] = {"retry": True}
        if countdown:
            options["countdown"] = countdown
        self._app.send_task(REPLAY_TASK, args=(key.event_id, key.target_arn), **options)
