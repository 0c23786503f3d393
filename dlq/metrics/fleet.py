"""The fleet's own CloudWatch metrics, put once a minute by the one beat process.

What a deployed fleet scales and alarms on, none of which a container's log route has to
extract (worker EMF stays off, so nothing is counted twice):

- `Backlog`: the replay work there is, the Redis replay queue's length, the messages
  visible in the dead-letter queue (work the front door has not taken yet) and the tasks
  the replay workers are running; and `BacklogPerWorker`, that over the replay workers
  that answered, which the redelivery service's target-tracking policy holds at its
  target (deploy/fleet.yaml). Counting the tasks in flight is what keeps the policy from
  scaling in below the workers that hold them (docs/deploy.md, "Scaling");
- `ReplayWorkers`: how many answered, and `Heartbeat` (1), the proof that the publisher
  itself runs: their alarms treat missing data as breaching, so a dead beat alarms too;
- the outcome counts of each complete minute, from the Redis counters `status` reads
  (`dlq.metrics.counters`): `EventsReplayed`, `EventsFailed`, `EventsExhausted`, and, for
  a poller front door only, `EventsRejected` (the ingest Lambda prints that one as EMF).

A pass runs SETTLE_SECONDS after each minute ends (`seconds_to_next_pass`), so a minute's
counts reach CloudWatch about 5 s after it, and the alarms' one-minute periods line up
with the passes. A minute is put once: a Redis marker keeps the last minute put, and a
lease per pass (named by its minute) lets one publisher put it, should a deployment
briefly run two beats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.metrics.counters import BUCKET_SECONDS, read_counts
from dlq.metrics.emf import INGEST_METRICS, NAMESPACE, REPLAY_METRICS

log = logging.getLogger(__name__)

BACKLOG = "Backlog"
BACKLOG_PER_WORKER = "BacklogPerWorker"
REPLAY_WORKERS = "ReplayWorkers"
HEARTBEAT = "Heartbeat"
#: The outcomes put per minute, as metric names (the same names as the EMF lines').
REPLAY_COUNTS = dict(REPLAY_METRICS)
INGEST_COUNTS = {"rejected": INGEST_METRICS["rejected"]}
#: How often the publisher puts, and so the period its alarms and policy read.
PERIOD_SECONDS = 60
#: A minute's counts are put once this long after it ends: a count sent at 59.9 s lands.
SETTLE_SECONDS = 5
#: After an outage, the publisher catches up this many minutes at most.
CATCH_UP_MINUTES = 10
#: CloudWatch takes this many datums per PutMetricData call (at least; 1000 since 2023).
_BATCH = 20
LEASE_PREFIX = "dlq:metrics:fleet:lease:"
MARKER_PREFIX = "dlq:metrics:fleet:put:"


@dataclass(frozen=True)
class FleetSample:
    """What waits and who works on it, at one moment."""

    queued: int
    dlq_visible: int
    in_flight: int
    workers: int | None

    @property
    def backlog(self) -> int:
        return self.queued + self.dlq_visible + self.in_flight

    @property
    def backlog_per_worker(self) -> float | None:
        """The backlog over the workers that answered (a backlog and no worker: all of it)."""
        if self.workers is None:
            return None
        return self.backlog / max(self.workers, 1)


class FleetPublisher:
    """Measures the backlog and puts the fleet's metrics (`publish`, once a minute).

    `queue_keys` are the broker's Redis lists of replay work; `dlq_depth` answers the
    dead-letter queue's (visible, in flight) messages (`sampling.sqs_queue_depth`);
    `replay_workers` how many replay workers answered and how many tasks they are
    running. `scope` is the ledger table, as
    the outcome counters name their buckets.
    """

    def __init__(
        self,
        cloudwatch: Any,
        client: redis.Redis,
        scope: str,
        *,
        queue_keys: Sequence[str],
        dlq_depth: Callable[[], tuple[int, int]] | None,
        replay_workers: Callable[[], tuple[int, int]] | None,
        ingest_counts: bool,
        namespace: str = NAMESPACE,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._cloudwatch = cloudwatch
        self._redis = client
        self._scope = scope
        self._queue_keys = tuple(queue_keys)
        self._dlq_depth = dlq_depth
        self._replay_workers = replay_workers
        self._counted = {**REPLAY_COUNTS, **(INGEST_COUNTS if ingest_counts else {})}
        self._namespace = namespace
        self._clock = clock

    @property
    def metric_names(self) -> frozenset[str]:
        """Every metric this publisher puts."""
        gauges = {BACKLOG, HEARTBEAT}
        if self._replay_workers is not None:
            gauges |= {BACKLOG_PER_WORKER, REPLAY_WORKERS}
        return frozenset(gauges | set(self._counted.values()))

    def sample(self) -> FleetSample:
        pipe = self._redis.pipeline(transaction=False)
        for key in self._queue_keys:
            pipe.llen(key)
        queued = sum(int(n) for n in pipe.execute())
        visible = self._dlq_depth()[0] if self._dlq_depth is not None else 0
        workers, in_flight = (None, 0)
        if self._replay_workers is not None:
            workers, in_flight = self._replay_workers()
        return FleetSample(queued=queued, dlq_visible=visible, in_flight=in_flight, workers=workers)

    def publish(self) -> bool:
        """Put the gauges now and the counts of the minutes not put yet; False when
        another publisher holds this minute's lease."""
        now = self._clock.now()
        lease = f"{LEASE_PREFIX}{self._scope}:{_pass_minute(now)}"
        if not self._redis.set(lease, "1", nx=True, ex=2 * PERIOD_SECONDS):
            return False
        data = self._gauges(self.sample(), now)
        minutes = self._minutes_due(now)
        for minute in minutes:
            data.extend(self._counts(minute))
        for start in range(0, len(data), _BATCH):
            self._cloudwatch.put_metric_data(
                Namespace=self._namespace, MetricData=data[start : start + _BATCH]
            )
        if minutes:
            self._redis.set(MARKER_PREFIX + self._scope, minutes[-1], ex=CATCH_UP_MINUTES * 60)
        return True

    def _gauges(self, sample: FleetSample, now: float) -> list[dict[str, Any]]:
        at = _timestamp(now)
        data = [
            _datum(BACKLOG, sample.backlog, at),
            _datum(HEARTBEAT, 1, at),
        ]
        if sample.workers is not None:
            data.append(_datum(REPLAY_WORKERS, sample.workers, at))
            data.append(_datum(BACKLOG_PER_WORKER, sample.backlog_per_worker or 0.0, at))
        return data

    def _minutes_due(self, now: float) -> list[int]:
        """The complete, settled minutes after the last one put (the last one alone the
        first time), oldest first."""
        last = int((now - SETTLE_SECONDS) // BUCKET_SECONDS) * BUCKET_SECONDS - BUCKET_SECONDS
        raw = self._redis.get(MARKER_PREFIX + self._scope)
        first = int(raw) + BUCKET_SECONDS if raw is not None else last
        first = max(first, last - (CATCH_UP_MINUTES - 1) * BUCKET_SECONDS)
        return list(range(first, last + 1, BUCKET_SECONDS))

    def _counts(self, minute: int) -> list[dict[str, Any]]:
        counts = read_counts(self._redis, self._scope, since=minute, until=minute).by_outcome
        at = _timestamp(minute)
        return [
            _datum(name, counts.get(outcome, 0), at, unit="Count")
            for outcome, name in sorted(self._counted.items())
        ]


def seconds_to_next_pass(now: float) -> float:
    """How long until the next pass: SETTLE_SECONDS after the current minute ends."""
    return PERIOD_SECONDS - (now - SETTLE_SECONDS) % PERIOD_SECONDS


def _pass_minute(now: float) -> int:
    """The pass `now` belongs to, named by the minute it follows' end (a pass between
    :05 and the next :05 is one pass, whoever runs it)."""
    return int((now - SETTLE_SECONDS) // PERIOD_SECONDS) * PERIOD_SECONDS


def _timestamp(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _datum(name: str, value: float, at: datetime, *, unit: str = "None") -> dict[str, Any]:
    # No dimensions: the alarms and the scaling policy read the dimensionless metric.
    return {"MetricName": name, "Value": float(value), "Timestamp": at, "Unit": unit}
