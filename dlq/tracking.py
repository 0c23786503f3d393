"""The replay state, written onto the Genesys conversation: one PATCH per conversation.

Outcomes are coalesced: the first outcome of a conversation schedules one tracking
run a few seconds later (the debounce), and that run summarises every event of the
conversation from the ledger in a single participant-attributes PATCH. It runs on its
own queue, at the rate limiter's low priority, and never causes a redelivery.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum

import redis

from dlq.arrivals import DRAIN_WAIT_QUIETS, Arrivals
from dlq.clock import SYSTEM_CLOCK, Clock, moment
from dlq.errors import GiveUp
from dlq.fleet import lua
from dlq.genesys.client import GenesysClient
from dlq.genesys.directory import ConversationDirectory
from dlq.ledger import FINAL_STATUSES, LedgerItem, LedgerStore, Status, about_to_change
from dlq.observe import NO_METRICS, MetricsObserver
from dlq.ratelimit import Priority

log = logging.getLogger(__name__)

PENDING_PREFIX = "dlq:track:pending:"
#: A run parked for the DLQ's drain: when the first outcome it waits for was known (the
#: bound of its deferral); no task waits for it, the next news of the conversation runs it.
PARKED_PREFIX = "dlq:track:parked:"
#: The conversation's items as the pass that brought it to rest saw them: the run that
#: follows summarises these instead of querying the ledger again.
SNAPSHOT_PREFIX = "dlq:track:snapshot:"
TRACKED_PREFIX = "dlq:track:done:"
TRACKED_TTL_SECONDS = 7 * 24 * 3600
#: A run waits while the conversation has events about to be attempted, so that they
#: share one PATCH; never longer than this after the first outcome.
MAX_DEFER_SECONDS = 120.0
#: How long a run waits in its thread for the Genesys budget's slot (the turns a LOW
#: caller is given are a slot apart: 0.2 s at 300 calls a minute) before it hands its task
#: back to the broker: a task run costs far more Redis than a wait.
BUDGET_WAIT_IN_THREAD_SECONDS = 1.0
#: How soon a run follows news from a conversation at rest (a pass's snapshot) whose
#: items are not all final (a retry far off, say).
AT_REST_DELAY_SECONDS = 0.5


class TrackingOutcome(StrEnum):
    PATCHED = "patched"
    UNCHANGED = "unchanged"
    NOTHING = "nothing_to_track"
    GAVE_UP = "gave_up"
    DEFERRED = "deferred"
    #: Deferred for the DLQ's drain, with no task to come back: the conversation's pass,
    #: parked for the same drain, brings news when it runs, and the news a run.
    PARKED = "parked"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class ItemState:
    """What a tracking run needs of one ledger item (a `LedgerItem` has all of it)."""

    event_id: str
    status: Status
    updated_at: str
    received_at: str
    participant_id: str | None = None
    last_error: str | None = None
    last_error_code: str | None = None
    next_attempt_at: float | None = None

    @classmethod
    def of(cls, item: ItemState | LedgerItem) -> ItemState:
        return cls(
            item.event_id,
            Status(item.status),
            item.updated_at,
            item.received_at,
            item.participant_id,
            # Only whether there was an error counts (the attributes carry codes).
            "error" if item.last_error else None,
            item.last_error_code,
            item.next_attempt_at,
        )


def dump_snapshot(items: Iterable[ItemState | LedgerItem]) -> str:
    return json.dumps([asdict(ItemState.of(i)) for i in items if i.status != Status.REJECTED])


def load_snapshot(raw: str | bytes) -> list[ItemState]:
    return [ItemState(**{**entry, "status": Status(entry["status"])}) for entry in json.loads(raw)]


class TrackingNews:
    """Debounces outcomes per conversation: the first one schedules the tracking run."""

    def __init__(
        self,
        client: redis.Redis,
        schedule: Callable[[str, float], None],
        *,
        debounce_seconds: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._redis = client
        self._schedule = schedule
        self._debounce = debounce_seconds
        self._clock = clock

    def mark(
        self, conversation_id: str, *, snapshot: Sequence[ItemState | LedgerItem] = ()
    ) -> None:
        """Note news for a conversation; schedules a run unless one is already pending.

        `snapshot` is every item of the conversation as the caller just saw them all (an
        ordered pass at rest): the run uses it instead of a ledger query. News without one
        drops any earlier snapshot, which it may have made stale.
        """
        pipe = self._redis.pipeline(transaction=False)
        if snapshot:
            pipe.set(
                SNAPSHOT_PREFIX + conversation_id, dump_snapshot(snapshot), ex=self.pending_ttl
            )
        else:
            pipe.delete(SNAPSHOT_PREFIX + conversation_id)
        pipe.set(
            PENDING_PREFIX + conversation_id, str(self._clock.now()), nx=True, ex=self.pending_ttl
        )
        if pipe.execute()[-1]:
            self._schedule(conversation_id, self._delay(snapshot))

    def wake(self, conversation_id: str) -> None:
        """A run parked for the DLQ's drain may go: schedules one unless one is pending.
        Not news: nothing changed, so the snapshot the parked run kept stays for it."""
        if self._redis.set(
            PENDING_PREFIX + conversation_id, str(self._clock.now()), nx=True, ex=self.pending_ttl
        ):
            self._schedule(conversation_id, self._debounce)

    def _delay(self, snapshot: Sequence[ItemState | LedgerItem]) -> float:
        """How long a new run waits for more news. A snapshot comes from a conversation at
        rest: nothing is left to gather, so the run goes instead of idling the budget for
        the debounce, at once when every item is final (nothing of it can change now)."""
        if not snapshot:
            return self._debounce
        if all(item.status in FINAL_STATUSES for item in snapshot):
            return 0.0
        return min(self._debounce, AT_REST_DELAY_SECONDS)

    @property
    def debounce_seconds(self) -> float:
        return self._debounce

    @property
    def pending_ttl(self) -> int:
        return int(MAX_DEFER_SECONDS + self._debounce * 4) + 60

    def is_pending(self, conversation_id: str) -> bool:
        """Whether a run will come: one is scheduled, or one is parked for the DLQ's drain
        (its deferral's bound, MAX_DEFER_SECONDS, ends the parking)."""
        return bool(
            self._redis.exists(PENDING_PREFIX + conversation_id, PARKED_PREFIX + conversation_id)
        )


def summary_attributes(items: Sequence[ItemState | LedgerItem], prefix: str) -> dict[str, str]:
    """The participant attributes for a conversation's replayed events (all strings)."""
    latest = max(items, key=lambda item: item.updated_at)
    counts = Counter(item.status for item in items)
    errors = sorted((i for i in items if i.last_error), key=lambda i: i.updated_at)
    retrying = counts[Status.RECEIVED] + counts[Status.IN_PROGRESS] + counts[Status.RETRY_SCHEDULED]
    return {
        f"{prefix}Status": latest.status.value,
        f"{prefix}Events": str(len(items)),
        f"{prefix}Replayed": str(counts[Status.REPLAYED]),
        f"{prefix}Retrying": str(retrying),
        f"{prefix}Failed": str(counts[Status.FAILED]),
        f"{prefix}Exhausted": str(counts[Status.EXHAUSTED]),
        # Ended by an operator without a delivery (`dlq-replay resolve`).
        f"{prefix}Resolved": str(counts[Status.RESOLVED]),
        f"{prefix}LastEventId": latest.event_id,
        # A code, never the text: a target's error message may quote ARNs, URLs or data,
        # and agents can read participant attributes.
        f"{prefix}LastErrorCode": (errors[-1].last_error_code or "") if errors else "",
    }


class Tracker:
    """Writes a conversation's summary onto its participant, at most once per change."""

    def __init__(
        self,
        *,
        ledger: LedgerStore,
        client: GenesysClient,
        directory: ConversationDirectory,
        cache: redis.Redis,
        prefix: str,
        pending_ttl: int = 300,
        arrivals: Arrivals | None = None,
        quiet_seconds: float = 0.0,
        clock: Clock = SYSTEM_CLOCK,
        metrics: MetricsObserver = NO_METRICS,
    ) -> None:
        """`arrivals` and `quiet_seconds` tell a run of events still on their way from the
        DLQ (`dlq.arrivals`, REPLAY_INGEST_QUIET_SECONDS): it waits for them as for an
        item about to finish, so a conversation whose events trickle in while the poller
        drains is PATCHed once, not once per event."""
        self._ledger = ledger
        self._arrivals = arrivals
        self._quiet = quiet_seconds
        self._metrics = metrics
        self._client = client
        self._directory = directory
        self._cache = cache
        self._prefix = prefix
        self._pending_ttl = pending_ttl
        self._clock = clock
        self._compare_and_delete = cache.register_script(lua("compare_and_delete"))

    def track(self, conversation_id: str) -> TrackingOutcome:
        """One tracking run; raises the client's errors when it must come back later.

        A run that raises (the budget says wait, Genesys answers 5xx) leaves what it was
        told for the run that comes back: the snapshot stays, and the mark is put back
        unless news came meanwhile (which scheduled a run of its own). Without that, each
        wait for the budget cost the next run a ledger query.
        """
        # The mark is cleared first: an outcome that lands during this run schedules
        # another run. The snapshot goes once this run has ended.
        pipe = self._cache.pipeline(transaction=False)
        pipe.getdel(PENDING_PREFIX + conversation_id)
        pipe.mget(
            SNAPSHOT_PREFIX + conversation_id,
            PARKED_PREFIX + conversation_id,
            TRACKED_PREFIX + conversation_id,
        )
        pending, (snapshot, parked, tracked) = pipe.execute()
        now = self._clock.now()
        first_mark = min(float(mark) for mark in (pending, parked, now) if mark)
        try:
            outcome = self._run(conversation_id, snapshot, first_mark, now, tracked=tracked)
        except Exception:
            self._cache.set(
                PENDING_PREFIX + conversation_id, str(first_mark), nx=True, ex=self._pending_ttl
            )
            raise
        if parked and outcome not in (TrackingOutcome.PARKED, TrackingOutcome.SUPERSEDED):
            self._cache.delete(PARKED_PREFIX + conversation_id)
        if snapshot and outcome not in (TrackingOutcome.DEFERRED, TrackingOutcome.PARKED):
            # Unless news brought a newer one meanwhile, for the run that news scheduled.
            # A deferred run leaves it to the run that comes back: news of an item since
            # replaces it or drops it (`TrackingNews.mark`), so it stays current.
            self._compare_and_delete(keys=[SNAPSHOT_PREFIX + conversation_id], args=[snapshot])
        return outcome

    def _run(
        self,
        conversation_id: str,
        snapshot: bytes | None,
        first_mark: float,
        now: float,
        *,
        tracked: bytes | None,
    ) -> TrackingOutcome:
        """`tracked`: what the latest run wrote (`TRACKED_PREFIX`), read with the rest."""
        items: Sequence[ItemState | LedgerItem] = (
            load_snapshot(snapshot)
            if snapshot
            else [
                i
                for i in self._ledger.by_conversation(conversation_id)
                if i.status != Status.REJECTED
            ]
        )
        if not items:
            return TrackingOutcome.NOTHING
        if now - first_mark < MAX_DEFER_SECONDS and (
            any(_imminent(i, now) for i in items) or self._coming(conversation_id)
        ):
            # Siblings are about to finish, or on their way: wait, one PATCH for all.
            if self._arrivals is not None and self._arrivals.is_draining():
                # The receive that ends the drain brings news of the conversation (and
                # its parked pass, more news): not a timer, every few seconds.
                bound = max(1, int(first_mark + MAX_DEFER_SECONDS - now) + 1)
                self._cache.set(PARKED_PREFIX + conversation_id, str(first_mark), nx=True, ex=bound)
                self._arrivals.park_tracking(conversation_id)
                if self._arrivals.is_draining():
                    return TrackingOutcome.PARKED
                # The drain ended meanwhile (its wake may have gone): defer on a timer.
            if self._cache.set(
                PENDING_PREFIX + conversation_id, str(first_mark), nx=True, ex=self._pending_ttl
            ):
                return TrackingOutcome.DEFERRED
            return TrackingOutcome.SUPERSEDED
        summary = summary_attributes(items, self._prefix)
        digest = hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()
        latest = max(i.updated_at for i in items)
        if (json.loads(tracked) if tracked else {}).get("digest") == digest:
            return TrackingOutcome.UNCHANGED
        context = {"conversation_id": conversation_id}
        try:
            participant = self._participant(conversation_id, items)
            if participant is None:
                raise GiveUp("the conversation has no customer participant to annotate")
            summary[f"{self._prefix}UpdatedAt"] = moment(now).isoformat(timespec="seconds")
            self._client.patch_participant_attributes(
                conversation_id,
                participant,
                summary,
                priority=Priority.LOW,
                wait_up_to=BUDGET_WAIT_IN_THREAD_SECONDS,
            )
        except GiveUp as exc:
            # A 4xx on an old conversation is an outcome, not a crash: Genesys documents
            # no window for patching ended conversations.
            log.warning(f"tracking gave up: {exc}", extra={**context, "outcome": "gave_up"})
            self._remember(conversation_id, digest, latest, error=str(exc)[:300])
            return TrackingOutcome.GAVE_UP
        self._remember(conversation_id, digest, latest)
        self._metrics.tracked(lag_seconds=self._clock.now() - first_mark)
        log.info("tracked", extra={**context, "outcome": "patched", "count": len(items)})
        return TrackingOutcome.PATCHED

    def _coming(self, conversation_id: str) -> bool:
        """Whether events of the conversation may still arrive from the DLQ."""
        if self._arrivals is None:
            return False
        return self._arrivals.wait(conversation_id, quiet_seconds=self._quiet) > 0

    def deferral(self, conversation_id: str, *, minimum: float) -> float:
        """How long a deferred run waits: as long as it has waited so far (so a backlog
        costs a few ledger queries, not one per debounce), within `MAX_DEFER_SECONDS`; at
        most `DRAIN_WAIT_QUIETS` quiet periods while it waits for arrivals, so that it
        follows the end of a drain closely."""
        raw = self._cache.get(PENDING_PREFIX + conversation_id)
        waited = self._clock.now() - float(raw) if raw else 0.0
        wait = max(minimum, min(waited, MAX_DEFER_SECONDS - waited))
        if self._coming(conversation_id):
            wait = min(wait, max(minimum, DRAIN_WAIT_QUIETS * self._quiet))
        return wait

    def last_tracked(self, conversation_id: str) -> dict[str, str]:
        """What the latest run wrote: digest, the ledger time it covered, any error."""
        return last_tracked(self._cache, conversation_id)

    def _participant(
        self, conversation_id: str, items: Sequence[ItemState | LedgerItem]
    ) -> str | None:
        """The event's participant when Genesys lists it in the conversation, else the
        customer: a participantId is only a claim of the DLQ message, and a forged one must
        not let anyone write onto another conversation's participant."""
        known = self._directory.lookup(conversation_id, priority=Priority.LOW)
        if not known.exists:
            raise GiveUp(f"conversation {conversation_id} no longer exists in Genesys")
        for item in sorted(items, key=lambda i: i.received_at):
            if not item.participant_id:
                continue
            if known.has_participant(item.participant_id):
                return item.participant_id
            log.warning(
                "an event's participantId is not a participant of its conversation; ignored",
                extra={"event_id": item.event_id, "conversation_id": conversation_id},
            )
        return known.participant_id

    def _remember(
        self, conversation_id: str, digest: str, covered: str, *, error: str | None = None
    ) -> None:
        record = {"digest": digest, "covered": covered, "error": error}
        self._cache.set(
            TRACKED_PREFIX + conversation_id, json.dumps(record), ex=TRACKED_TTL_SECONDS
        )


def last_tracked(cache: redis.Redis, conversation_id: str) -> dict[str, str]:
    """What the latest tracking run of a conversation wrote: digest, covered time, error."""
    raw = cache.get(TRACKED_PREFIX + conversation_id)
    return dict(json.loads(raw)) if raw else {}


def pending_runs(cache: redis.Redis) -> int:
    """How many conversations have a tracking run waiting (a scan: for the demo's view)."""
    return sum(1 for _ in cache.scan_iter(f"{PENDING_PREFIX}*", count=1000))


def _imminent(item: ItemState | LedgerItem, now: float) -> bool:
    """Whether an item is about to get an outcome (tracking waits for it)."""
    return about_to_change(item.status, next_attempt_at=item.next_attempt_at, now=now)
