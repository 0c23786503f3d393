"""The reconciler: rebuilds from the ledger whatever work Redis lost.

Run on a schedule (`celery -A tasks beat`). A Redis flush, a lost countdown or a killed
worker delays an event; this is what makes sure it never loses one:

- `received` items older than the grace, while the broker queue is empty (their task
  is gone: with a backlog waiting, they are simply waiting their turn);
- `retry_scheduled` items whose retry is overdue by the grace;
- `in_progress` items whose lease has lapsed (the worker died);
- conversations with outcomes newer than what tracking last wrote: read from the ledger
  since a high-water mark in Redis (the oldest outcome not yet known to be tracked, less
  `CATCH_UP_OVERLAP_SECONDS`), so a pass reads what changed lately, not the whole
  tracking window; without a mark (the first pass, or after Redis lost it), the window.

Idempotent across passes: each requeue of an item leaves a marker in Redis, named for
the item as the ledger has it (its status and `updated_at`), for one grace period. A pass
that finds the marker leaves the item to the task already sent: two beats (a deployment
briefly running two), or ticks that waited behind a backlog and run back to back,
enqueue each pending item once. One pass at a time besides (a Redis lock). An item that
changed since (claimed, retried, its lease lapsed again) is a new state, with no marker.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable

import redis

from dlq.broker import ReplayEnqueuer
from dlq.clock import SYSTEM_CLOCK, Clock, iso, parse_iso
from dlq.ledger import LedgerItem, LedgerStore, Status
from dlq.locks import lock_name
from dlq.redisclient import decoded
from dlq.tracking import Tracker, TrackingNews

log = logging.getLogger(__name__)

#: The prefix of the markers of requeued items (one per item state, for a grace period).
REQUEUED_PREFIX = "dlq:reconciler:requeued:"
#: The tracking catch-up's high-water mark: outcomes before it are known to be tracked.
CATCH_UP_MARK = "dlq:reconciler:tracked-through"
#: A pass re-reads this much before the mark: the ledger's status index is eventually
#: consistent, and the workers' clocks that stamp `updated_at` differ by a little.
CATCH_UP_OVERLAP_SECONDS = 30.0


class Reconciler:
    """Re-enqueues what the ledger says is pending but nothing is working on."""

    def __init__(
        self,
        *,
        ledger: LedgerStore,
        enqueuer: ReplayEnqueuer,
        news: TrackingNews,
        tracker: Tracker,
        lock_client: redis.Redis,
        queue_depth: Callable[[], int],
        grace_seconds: float = 120.0,
        tracking_window_seconds: float = 3600.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._ledger = ledger
        self._enqueuer = enqueuer
        self._news = news
        self._tracker = tracker
        self._lock_client = lock_client
        self._queue_depth = queue_depth
        self._grace = grace_seconds
        self._window = tracking_window_seconds
        self._clock = clock

    def run(self) -> Counter[str]:
        """One pass; returns how many items of each kind it re-enqueued."""
        lock = self._lock_client.lock("dlq:lock:reconciler", timeout=300, blocking=False)
        if not lock.acquire(blocking=False):
            return Counter(skipped_pass=1)
        try:
            report = self._pass()
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                log.warning("the reconciler's lock expired during its pass")
        if report:
            log.info(f"reconciled: {dict(report)}", extra={"count": sum(report.values())})
        return report

    def _pass(self) -> Counter[str]:
        report: Counter[str] = Counter()
        now = self._clock.now()
        stale = iso(now - self._grace)
        if self._queue_depth() == 0:
            for item in self._ledger.by_status(Status.RECEIVED, updated_before=stale):
                self._requeue(item, "received", report)
        for item in self._ledger.by_status(Status.RETRY_SCHEDULED):
            if (item.next_attempt_at or 0) < now - self._grace:
                self._requeue(item, "retry_overdue", report)
        for item in self._ledger.by_status(Status.IN_PROGRESS):
            if (item.lease_until or 0) < now:
                self._requeue(item, "lease_lapsed", report)
        self._catch_up_tracking(report)
        return report

    def _requeue(self, item: LedgerItem, kind: str, report: Counter[str]) -> None:
        marker = requeued_marker(item)
        ttl_ms = max(1, int(self._grace * 1000))
        if not self._lock_client.set(marker, "1", nx=True, px=ttl_ms):
            report["already_requeued"] += 1
            return
        try:
            self._enqueuer.enqueue_replay(
                item.key,
                lock=lock_name(item.key, item.conversation_id),
                generation=item.redriven_at,
            )
        except BaseException:
            self._lock_client.delete(marker)  # not sent: the next pass tries again
            raise
        report[kind] += 1

    def _catch_up_tracking(self, report: Counter[str]) -> None:
        now = self._clock.now()
        since = iso(now - self._window)
        raw = self._lock_client.get(CATCH_UP_MARK)
        mark = parse_iso(decoded(raw)) if raw is not None else None
        if mark is not None:
            since = max(since, iso(mark.timestamp() - CATCH_UP_OVERLAP_SECONDS))
        newest: dict[str, str] = {}
        caught_up = (
            Status.REPLAYED,
            Status.FAILED,
            Status.EXHAUSTED,
            Status.RESOLVED,
            Status.RETRY_SCHEDULED,
        )
        for status in caught_up:
            for item in self._ledger.by_status(status, updated_after=since):
                if item.conversation_id:
                    newest[item.conversation_id] = max(
                        item.updated_at, newest.get(item.conversation_id, "")
                    )
        # The mark moves up to the oldest outcome still untracked: a pass reads it again
        # until tracking covers it, even if the run marked now is lost.
        through = iso(now)
        for conversation_id, updated_at in newest.items():
            covered = self._tracker.last_tracked(conversation_id).get("covered") or ""
            if covered >= updated_at:
                continue
            through = min(through, updated_at)
            if not self._news.is_pending(conversation_id):
                self._news.mark(conversation_id)
                report["tracking"] += 1
        self._lock_client.set(CATCH_UP_MARK, through, ex=max(1, int(self._window)))


def requeued_marker(item: LedgerItem) -> str:
    """The Redis key that says this item, in this state, was requeued lately."""
    state = "\x1f".join(
        (
            item.key.event_id,
            item.key.target_arn,
            item.key.rule_arn,
            item.status.value,
            item.updated_at,
        )
    )
    return REQUEUED_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:32]
