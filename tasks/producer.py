"""The producer side of the broker: enqueue replays and tracking runs by task name."""

from __future__ import annotations

import redis
from celery import Celery

from dlq.events import EventKey
from tasks.names import REPLAY_QUEUE, REPLAY_TASK, TRACK_TASK, VERIFY_QUEUE, VERIFY_TASK


class CeleryEnqueuer:
    """Implements `dlq.broker.ReplayEnqueuer`: the key travels, and the lock the attempt
    takes (so the worker's first ledger request is the claim)."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def enqueue_replay(
        self,
        key: EventKey,
        *,
        lock: str | None = None,
        countdown: float = 0.0,
        generation: str | None = None,
        parked: bool = False,
    ) -> None:
        args = (key.event_id, key.target_arn, key.rule_arn, lock, generation)
        # Only when set: a task that carries no `parked` runs on a worker that predates it.
        kwargs = {"parked": True} if parked else None
        self._app.send_task(
            REPLAY_TASK, args=args, kwargs=kwargs, retry=True, countdown=countdown or None
        )


class TrackingScheduler:
    """Schedules one tracking run of a conversation, `delay` seconds out."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def __call__(self, conversation_id: str, delay: float) -> None:
        self._app.send_task(TRACK_TASK, args=(conversation_id,), countdown=delay)


class VerifyScheduler:
    """Schedules one batch verification run, `delay` seconds out (`PendingVerifications`).

    Given `broker` (a client of the broker's Redis), it queues none while a run already
    waits in the `verify` list that no worker has taken (a worker takes a countdown task
    at once and holds it): that run verifies whatever waits when it starts. Without this,
    a fleet that consumes no `verify` queue would get one more message a minute, for good
    (each time the `dlq:verify:scheduled` flag lapses).
    """

    def __init__(self, app: Celery, *, broker: redis.Redis | None = None) -> None:
        self._app = app
        self._broker = broker

    def __call__(self, delay: float) -> None:
        if self._broker is not None and self._broker.llen(VERIFY_QUEUE):
            return
        self._app.send_task(VERIFY_TASK, retry=True, countdown=delay or None)


def replay_queue_depth(client: redis.Redis) -> int:
    """How many replay messages wait in the broker (the Redis transport keeps a list)."""
    return int(client.llen(REPLAY_QUEUE))
