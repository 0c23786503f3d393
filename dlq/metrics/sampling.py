"""Gauges sampled at an interval, by one process of the fleet at a time.

How many ledger items wait in each status (the counts kept in Redis as items move,
`dlq.metrics.tally`, recounted from the table when due: no read of the ledger a minute)
and how deep the DLQ is (`GetQueueAttributes`). Any number of workers and pollers run a
`Sampler`; a Redis lease (`SET NX EX interval`) lets one of them take each sample, and
writes it to a Redis hash that every process's metrics endpoint reads when scraped, so
every endpoint shows the same, fresh numbers.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import redis

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.ledger import Status
from dlq.metrics.tally import COUNTED, RECOUNT_SECONDS, StatusTally

log = logging.getLogger(__name__)

SAMPLE_PREFIX = "dlq:metrics:sample:"
LEASE_PREFIX = "dlq:metrics:lease:"
#: The statuses sampled: what waits for a worker, and what waits for an operator.
SAMPLED_STATUSES = (
    Status.RECEIVED,
    Status.IN_PROGRESS,
    Status.RETRY_SCHEDULED,
    Status.FAILED,
    Status.EXHAUSTED,
)


class Sampler:
    """Takes the fleet's sample when no other process took it within `interval` seconds.

    `count_status` answers how many ledger items have a status (`Ledger.count_by_status`),
    which recounts the `tally` every `recount_every` seconds; `queue_depth` answers the
    DLQ's (visible, in flight) messages. Either may be None.
    """

    def __init__(
        self,
        client: redis.Redis,
        scope: str,
        *,
        count_status: Callable[[Status], int] | None,
        queue_depth: Callable[[], tuple[int, int]] | None,
        interval: float,
        recount_every: float = RECOUNT_SECONDS,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._redis = client
        self._scope = scope
        self._count_status = count_status
        self._tally = StatusTally(client, scope, clock=clock)
        self._recount_every = recount_every
        self._queue_depth = queue_depth
        self._interval = interval
        self._clock = clock
        self._token = uuid.uuid4().hex

    def sample_once(self) -> bool:
        """Take the sample if this process holds the lease; True when it did."""
        lease = max(1, int(self._interval))
        if not self._redis.set(LEASE_PREFIX + self._scope, self._token, nx=True, ex=lease):
            return False
        values: dict[Any, float] = {}  # redis-py types hset keys as a wide union
        if self._count_status is not None:
            counts = self._tally.current(self._count_status, every=self._recount_every)
            if counts is not None:  # else another process is recounting: next sample
                for status in SAMPLED_STATUSES:
                    values[f"ledger:{status.value}"] = (
                        counts.by_status[status]
                        if status in COUNTED
                        else self._count_status(status)  # in_progress: the leases alone
                    )
        if self._queue_depth is not None:
            visible, in_flight = self._queue_depth()
            values["dlq:visible"] = visible
            values["dlq:not_visible"] = in_flight
        values["sampled_at"] = self._clock.now()
        key = SAMPLE_PREFIX + self._scope
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(key, mapping=values)
        pipe.expire(key, lease * 10)
        pipe.execute()
        return True

    def run(self, stop: threading.Event) -> None:
        """Sample every `interval` until `stop` is set (a daemon thread's body).

        The first sample waits an interval too: a process that stops at once (a
        misconfigured poller) says why in one line, without the sampler's echo of it.
        """
        while not stop.wait(self._interval):
            try:
                self.sample_once()
            except Exception as exc:
                log.warning(f"could not sample the ledger and DLQ depth: {exc}; next time")

    def start(self) -> threading.Event:
        """Run in a daemon thread; answers the event that stops it."""
        stop = threading.Event()
        threading.Thread(target=self.run, args=(stop,), name="metrics-sampler", daemon=True).start()
        return stop


def read_sample(client: redis.Redis, scope: str) -> Mapping[str, float]:
    """The latest sample (`ledger:<status>`, `dlq:visible`, `dlq:not_visible`,
    `sampled_at`), empty when none is fresh."""
    raw = client.hgetall(SAMPLE_PREFIX + scope)
    return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}


def sqs_queue_depth(sqs: Any, queue_url: str) -> Callable[[], tuple[int, int]]:
    """A `queue_depth` over `GetQueueAttributes` (ApproximateNumberOfMessages/NotVisible)."""

    def depth() -> tuple[int, int]:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes.get("ApproximateNumberOfMessages", 0)),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    return depth
