"""Beat with the fleet's CloudWatch metrics: `celery -A tasks beat --scheduler
tasks.fleetbeat:FleetMetricsScheduler` (deploy/fleet.yaml runs beat so).

Celery's own persistent scheduler, plus a daemon thread that puts the fleet's metrics
(`dlq.metrics.fleet`) every minute. In beat and not in a queued task: a task would wait
in the very queue whose length it measures, and say "no backlog" late exactly when there
is one. Beat is one process per deployment, so the metrics are put once. Without this
scheduler (docker-compose.yml, the tests) nothing is put, and beat needs no CloudWatch.

Its scheduler is `tasks.health.HeartbeatScheduler`'s: each tick touches beat's heartbeat
(`dlq-replay health --service beat`, the beat container's health check); a publishing
thread that died stops the heartbeat too, so the beat is replaced.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from dlq.aws import aws_client
from dlq.metrics.fleet import FleetPublisher, seconds_to_next_pass
from dlq.metrics.sampling import sqs_queue_depth
from tasks.config import settings
from tasks.health import HeartbeatScheduler
from tasks.names import REPLAY_QUEUE

log = logging.getLogger(__name__)

#: The replay workers' node names begin so (`-n replay@%h`).
REPLAY_NODE_PREFIX = "replay@"


def build_publisher(app: Any) -> FleetPublisher:
    """The publisher of this process's settings; replay workers and their tasks counted by
    one `inspect active` broadcast.

    Its Redis client is the broker's, as the app connects to it (the credential provider
    and TLS of celeryconfig): the queue lists and the outcome counters live there.
    """
    config = settings()
    client = app.connection_for_write().default_channel.client
    depth = (
        sqs_queue_depth(aws_client("sqs", config), config.dlq_queue_url)
        if config.dlq_queue_url
        else None
    )

    def replay_workers() -> tuple[int, int]:
        # One broadcast: who answers, and what each is running (prefork or threads, the
        # main process answers while the pool works).
        active = app.control.inspect(timeout=2.0).active() or {}
        replay = {
            node: tasks for node, tasks in active.items() if node.startswith(REPLAY_NODE_PREFIX)
        }
        return len(replay), sum(len(tasks) for tasks in replay.values())

    return FleetPublisher(
        aws_client("cloudwatch", config),
        client,
        config.ledger_table,
        queue_keys=(REPLAY_QUEUE,),
        dlq_depth=depth,
        replay_workers=replay_workers,
        ingest_counts=config.ingest_front_door == "poller",
    )


def publish_forever(publisher: FleetPublisher, stop: threading.Event) -> None:
    """Publish at once, then SETTLE_SECONDS after each minute ends, until `stop`; a failed
    pass is logged and the next one tries."""
    while True:
        try:
            publisher.publish()
        except Exception as exc:
            log.warning(f"could not put the fleet's CloudWatch metrics: {exc}; next minute")
        if stop.wait(seconds_to_next_pass(time.time())):
            return


class FleetMetricsScheduler(HeartbeatScheduler):
    """Beat's heartbeat scheduler that also runs the fleet's metrics publisher; a tick
    after the publisher's thread died proves nothing (the beat is then replaced)."""

    def setup_schedule(self) -> None:
        super().setup_schedule()
        if getattr(self, "_metrics_stop", None) is None:
            self._metrics_stop = threading.Event()
            self._metrics_thread = threading.Thread(
                target=publish_forever,
                args=(build_publisher(self.app), self._metrics_stop),
                name="fleet-metrics",
                daemon=True,
            )
            self._metrics_thread.start()

    def works(self) -> bool:
        thread = getattr(self, "_metrics_thread", None)
        return super().works() and (thread is None or thread.is_alive())

    def close(self) -> None:
        stop = getattr(self, "_metrics_stop", None)
        if stop is not None:
            stop.set()
        super().close()
