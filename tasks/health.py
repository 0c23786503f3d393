"""How a worker and beat prove their work to `dlq-replay health` (`dlq.health`).

No Celery broadcast per probe: a worker's consumer touches its heartbeat from its own
event loop, every REPLAY_HEALTH_INTERVAL_SECONDS, while it is connected to the broker and
its pool runs. When the broker connection is lost the consumer stops its steps (this one
too) and reconnects: no touch until it consumes again, so the file ages and the health
check fails. Beat's scheduler touches its heartbeat on every tick whose last publish
went through.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps
from celery.beat import PersistentScheduler

from dlq.health import Heartbeat
from tasks.config import settings

log = logging.getLogger(__name__)


def heartbeat_of(service: str) -> Heartbeat:
    """The heartbeat file of `service` in REPLAY_HEALTH_DIR."""
    return Heartbeat.of(service, settings().replay_health_dir)


def consumer_works(consumer: Any) -> bool:
    """Whether the consumer is connected to the broker and its pool can run tasks."""
    connection = getattr(consumer, "connection", None)
    if connection is None or not connection.connected:
        return False
    pool = getattr(consumer, "pool", None)
    if pool is None or not pool.active:
        return False
    # Prefork: the pool's child processes (billiard's `Pool._pool`); one alive will do,
    # the pool replaces the others.
    processes = getattr(getattr(pool, "_pool", None), "_pool", None)
    if isinstance(processes, list):
        return any(process.is_alive() for process in processes)
    return True


class ConsumerHeartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
    """A consumer step: touches the worker's heartbeat on a timer of its event loop."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._heartbeat = heartbeat_of("worker")
        self._interval = settings().replay_health_interval_seconds
        self._timer: Any = None

    def start(self, parent: Any) -> None:
        self._beat(parent)
        self._timer = parent.timer.call_repeatedly(
            self._interval, self._beat, (parent,), priority=10
        )

    def stop(self, parent: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def shutdown(self, parent: Any) -> None:
        self.stop(parent)
        self._heartbeat.clear()

    def _beat(self, consumer: Any) -> None:
        if consumer_works(consumer):
            self._heartbeat.beat()


class HeartbeatScheduler(PersistentScheduler):  # type: ignore[misc]
    """Celery's persistent scheduler that touches beat's heartbeat on every tick.

    It ticks at least every REPLAY_HEALTH_INTERVAL_SECONDS (a tick with nothing due costs
    a look at its heap), and a tick after a publish that failed (the broker is away)
    proves nothing until a publish goes through again.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._heartbeat = heartbeat_of("beat")
        self._interval = settings().replay_health_interval_seconds
        self._publish_failed = False
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay = super().tick(*args, **kwargs)
        if self.works():
            self._heartbeat.beat()
        return float(min(delay, self._interval))

    def works(self) -> bool:
        """Whether this tick proves beat's work: its last publish went through."""
        return not self._publish_failed

    def apply_async(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = super().apply_async(*args, **kwargs)
        except Exception:
            self._publish_failed = True
            raise
        self._publish_failed = False
        return result

    def close(self) -> None:
        self._heartbeat.clear()
        super().close()
