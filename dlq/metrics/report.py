"""The `status` report: outcomes counted as they happened, and what waits in the ledger now.

Nothing here scans the ledger. Outcomes come from the Redis counters
(`dlq.metrics.counters`), one HGETALL per minute of the window; what waits comes from the
status counts kept as items move (`dlq.metrics.tally`: recounted from the table first when
due, which the report says), the oldest waiting item from the head of each pending
status's index, and what holds the retries from their items (`retry_scheduled`, read with
the two attributes it needs). Reusable by any view (`status --watch`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, Protocol

import redis

from dlq.clock import iso
from dlq.codes import GENESYS_WAIT_CODES, TARGET_HOLD_CODES
from dlq.ledger import PENDING_STATUSES, LedgerItem, Status
from dlq.metrics.counters import RETENTION_SECONDS, read_counts
from dlq.metrics.sampling import SAMPLED_STATUSES
from dlq.metrics.tally import RECOUNT_SECONDS, StatusTally


class CountingLedger(Protocol):
    """What the report needs of the ledger (`Ledger`, `MemoryLedger`)."""

    def count_by_status(self, status: Status) -> int: ...

    def by_status(
        self,
        status: Status,
        *,
        updated_before: str | None = None,
        updated_after: str | None = None,
        limit: int | None = None,
    ) -> Iterator[LedgerItem]: ...


def status_report(
    ledger: CountingLedger,
    client: redis.Redis,
    scope: str,
    *,
    now: float,
    since: float | None = None,
    until: float | None = None,
    recount_every: float = RECOUNT_SECONDS,
) -> dict[str, Any]:
    """The report as data. `since` defaults to, and is clipped to, the counters' retention;
    `until` (the outcomes' end, not what waits: that is always now) defaults to `now`.
    `scope` is the ledger table's name: it names the counters and the status counts."""
    # The ledger first: without it there is nothing to report, and its error says why.
    oldest = _oldest_pending(ledger)
    kept = StatusTally(client, scope).current(ledger.count_by_status, every=recount_every)
    if kept is None:  # another process is recounting them right now: count here
        in_ledger = {s: ledger.count_by_status(s) for s in (*SAMPLED_STATUSES, Status.RESOLVED)}
        counted: dict[str, Any] = {"recounted_at": None, "drift": {}}
    else:
        in_ledger = {
            **kept.by_status,
            Status.IN_PROGRESS: ledger.count_by_status(Status.IN_PROGRESS),
        }
        counted = {
            "recounted_at": iso(kept.recounted_at),
            "drift": {s.value: d for s, d in kept.drift.items() if d},
        }
    waiting = {status.value: in_ledger[status] for status in SAMPLED_STATUSES}
    for_genesys: Counter[str] = Counter()
    for_targets: dict[str, Counter[str]] = {}  # items held by their target, by hold code
    for item in ledger.by_status(Status.RETRY_SCHEDULED):
        code = item.last_error_code
        if code in GENESYS_WAIT_CODES:
            for_genesys[code] += 1
        elif code in TARGET_HOLD_CODES:
            for_targets.setdefault(item.target_arn, Counter())[code] += 1
    earliest = now - RETENTION_SECONDS
    start = earliest if since is None else max(since, earliest)
    end = now if until is None else min(until, now)
    counts = read_counts(client, scope, since=start, until=end)
    return {
        **counts.as_dict(),
        # The counts' own bounds are epoch seconds: the report's times are the ledger's ISO.
        "since": iso(counts.since),
        "until": iso(end),
        "clipped": since is not None and since < earliest,
        "since_epoch": counts.since,
        "waiting": waiting,
        # Ended by operators without a delivery (`resolve`), as the ledger holds them now.
        "resolved": in_ledger[Status.RESOLVED],
        # When the counts of `waiting` and `resolved` were last set from the table, and
        # how far the counts kept as items moved were off then.
        "counted": counted,
        "waiting_for_genesys": dict(sorted(for_genesys.items())),
        "waiting_on_targets": {t: dict(c) for t, c in sorted(for_targets.items())},
        "oldest_pending": oldest,
    }


def _oldest_pending(ledger: CountingLedger) -> dict[str, Any] | None:
    """The pending item received first, among the least recently updated of each pending
    status (the head of its index: one item read, not a page)."""
    heads = [
        next(iter(ledger.by_status(status, limit=1)), None) for status in sorted(PENDING_STATUSES)
    ]
    oldest = min((h for h in heads if h is not None), key=lambda i: i.received_at, default=None)
    if oldest is None:
        return None
    return {
        "event_id": oldest.event_id,
        "status": oldest.status.value,
        "received_at": oldest.received_at,
        "attempts": oldest.attempts,
        "last_error": oldest.last_error,
    }
