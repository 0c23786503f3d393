"""Cluster-wide outcome counters in Redis, by minute: what `dlq-replay status` reads.

One hash per minute and deployment (`dlq:stats:<ledger table>:<minute epoch>`), one
field per (outcome, target, error code, DLQ error code), one HINCRBY per outcome as it
happens. The count that creates a field (the first of its kind in the minute, or the
first after a Redis restart emptied the bucket) also sends the EXPIRE that makes the
bucket go `ttl_seconds` after its minute; the others need none.
Reading a window is one HGETALL per minute in it, pipelined: cheap at any ledger size,
unlike a scan, and bounded by the retention.

The workers and the poller sum their counts in process (`dlq.metrics.buffer`) and write
them every `FLUSH_SECONDS`: one summed HINCRBY a field and flush, and the EXPIRE when that
HINCRBY answers the increment it sent (it created the field). A count keeps the minute it
happened in. `status` then lags them by that interval, and a process that dies loses its
last interval's counts, as a count Redis refuses is lost (logged). Counters without a
buffer (the short-lived commands) count at once.

The two codes are the two vocabularies of `dlq.codes`: the error code is the replay's
own (`HTTP503`), set for `failed` and `exhausted` only (`none` otherwise); the DLQ error
code is EventBridge's ERROR_CODE, for every outcome.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.metrics.buffer import CountSink, DirectCounts, Expiry
from dlq.metrics.labels import NONE, dlq_error_label, failure_label, target_label
from dlq.observe import Outcome, QuietObserver

log = logging.getLogger(__name__)

BUCKET_SECONDS = 60
#: How long a minute's counts are kept: `status --since` reaches this far back at most.
RETENTION_SECONDS = 3 * 24 * 3600
PREFIX = "dlq:stats:"
_SEP = "|"
#: The outcomes counted, in the order `status` shows them.
OUTCOMES = ("ingested", "duplicate", "rejected", "replayed", "failed", "exhausted")
#: The outcomes that carry the replay's own error code.
FAILURE_OUTCOMES = ("failed", "exhausted")
#: The ingest core's outcomes, as counted.
_INGEST = {
    "accepted": "ingested",
    # The same message again after a hand-off that failed before it was counted.
    "requeued": "ingested",
    "duplicate": "duplicate",
    "rejected": "rejected",
}


def outcome_labels(outcome: Outcome) -> tuple[str, str, str, str]:
    """(outcome, target, error code, DLQ error code) of a recorded replay outcome.

    The error code is the replay's own failure code for `failed`/`exhausted` (`none` for
    `replayed`, whatever an earlier retry failed with); the DLQ error code is the DLQ's
    ERROR_CODE (what EventBridge gave up on).
    """
    status = outcome.status
    code = failure_label(outcome.failure_code if status in FAILURE_OUTCOMES else None)
    dlq_code = dlq_error_label(outcome.dlq_error_code)
    return status, target_label(outcome.target_arn), code, dlq_code


def ingest_labels(
    outcome: str, target_arn: str | None, dlq_error_code: str | None
) -> tuple[str, str, str, str] | None:
    """(outcome, target, error code, DLQ error code) of an ingest (no replay yet: its error
    code is `none`), or None for one not counted (a requeue)."""
    counted = _INGEST.get(outcome)
    if counted is None:
        return None
    return counted, target_label(target_arn), NONE, dlq_error_label(dlq_error_code)


def bucket_key(scope: str, bucket: int) -> str:
    return f"{PREFIX}{scope}:{bucket}"


class OutcomeCounters(QuietObserver):
    """A `MetricsObserver` that counts ingest and replay outcomes into Redis buckets.

    `scope` names the deployment (the ledger table), so deployments sharing one Redis
    keep apart. A Redis failure loses that count, logged, and never fails the caller.
    With `counts` (the process's `CountBuffer`), counts wait for its next flush instead
    (see above).
    """

    def __init__(
        self,
        client: redis.Redis,
        scope: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        ttl_seconds: int = RETENTION_SECONDS,
        counts: CountSink | None = None,
    ) -> None:
        self._redis = client
        self._scope = scope
        self._clock = clock
        self._ttl = ttl_seconds
        self._counts = counts or DirectCounts(
            client, consequence="status undercounts these outcomes", clock=clock
        )
        self._expiry = Expiry(BUCKET_SECONDS + ttl_seconds)

    def ingested(self, outcome: str, *, target_arn: str | None, dlq_error_code: str | None) -> None:
        labels = ingest_labels(outcome, target_arn, dlq_error_code)
        if labels is not None:
            self._count(*labels)

    def finished(self, outcome: Outcome) -> None:
        self._count(*outcome_labels(outcome))

    def _count(self, outcome: str, target: str, code: str, dlq_code: str) -> None:
        bucket = int(self._clock.now() // BUCKET_SECONDS) * BUCKET_SECONDS
        key = bucket_key(self._scope, bucket)
        field = _SEP.join((outcome, target, code, dlq_code))
        # The minute is the count's own, whenever a buffer's flush writes it.
        self._counts.add(key, {field: 1}, expiry=self._expiry)


@dataclass(frozen=True)
class OutcomeCounts:
    """Counts over a window: by outcome, and by (outcome, target), (outcome, error code:
    `failed` and `exhausted` only) and (outcome, DLQ error code)."""

    since: float
    until: float
    by_outcome: Counter[str] = field(default_factory=Counter)
    by_target: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_error_code: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_dlq_error_code: Counter[tuple[str, str]] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        def nested(counter: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for (outcome, label), n in sorted(counter.items()):
                out.setdefault(outcome, {})[label] = n
            return out

        return {
            "since": self.since,
            "until": self.until,
            "by_outcome": {o: self.by_outcome[o] for o in OUTCOMES},
            "by_target": nested(self.by_target),
            "by_error_code": nested(self.by_error_code),
            "by_dlq_error_code": nested(self.by_dlq_error_code),
        }


def read_counts(
    client: redis.Redis,
    scope: str,
    *,
    since: float,
    until: float,
    chunk: int = 500,
) -> OutcomeCounts:
    """The outcomes counted in the minutes from the one holding `since` to `until`.

    Minute granularity: `since` counts from the start of its minute. Reusable by any
    view (a live `status --watch` calls it once per refresh).
    """
    first = int(since // BUCKET_SECONDS) * BUCKET_SECONDS
    buckets = list(range(first, int(until) + 1, BUCKET_SECONDS))
    counts = OutcomeCounts(since=first, until=until)
    for start in range(0, len(buckets), chunk):
        pipe = client.pipeline(transaction=False)
        for bucket in buckets[start : start + chunk]:
            pipe.hgetall(bucket_key(scope, bucket))
        for fields in pipe.execute():
            _add(counts, fields.items())
    return counts


def _add(counts: OutcomeCounts, fields: Iterable[tuple[bytes | str, bytes | str]]) -> None:
    for raw_field, raw_value in fields:
        name = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
        parts = name.split(_SEP)
        if len(parts) == 4:
            outcome, target, code, dlq_code = parts
        elif len(parts) == 3:
            # Counted before the two codes had a field each: one code, by the outcome.
            outcome, target, legacy = parts
            failure = outcome in FAILURE_OUTCOMES
            code, dlq_code = (legacy, "") if failure else (NONE, legacy)
        else:
            continue
        n = int(raw_value)
        counts.by_outcome[outcome] += n
        counts.by_target[(outcome, target)] += n
        if outcome in FAILURE_OUTCOMES:
            counts.by_error_code[(outcome, code)] += n
        if dlq_code:
            counts.by_dlq_error_code[(outcome, dlq_code)] += n
