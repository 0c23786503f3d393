"""The ordered pass: a conversation's due items for one target, oldest event first.

Runs under the conversation's lock. Verifies the conversation once, then claims and
attempts the items of the line in event-time order; stops at an item that must wait (a
retry not yet due), and records what it settled for the other items' tasks.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from math import inf

from dlq.arrivals import Arrivals, Parked
from dlq.broker import ReplayEnqueuer
from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.errors import BudgetWait, ConfigurationError, GiveUp, RetryLater
from dlq.events import EventKey
from dlq.genesys.directory import ConversationDirectory
from dlq.ledger import FINAL_STATUSES, ClaimRefused, LedgerItem, LedgerStore, StaleClaim, Status
from dlq.locks import Held
from dlq.replay.attempt import Attempts
from dlq.replay.holds import TargetHeld
from dlq.replay.line import Hold, is_due, line_up, settled, waiting_since
from dlq.replay.outcomes import (
    OUTCOME_OF,
    AttemptFailed,
    RecordLost,
    ReplayOptions,
    ReplayOutcome,
    Wait,
)
from dlq.replay.results import PassResults
from dlq.retry import RetryPolicy

#: Outcomes a task reports as a failure (`tasks.replay.EventNotReplayed`).
NOT_REPLAYED = frozenset(
    o.value for o in (ReplayOutcome.FAILED, ReplayOutcome.EXHAUSTED, ReplayOutcome.REJECTED)
)

log = logging.getLogger("dlq.replay")


@dataclass(slots=True)
class _Pass:
    """What one ordered pass has seen and settled so far."""

    key: EventKey
    conversation_id: str
    now: float
    #: Every item of the conversation, as the pass last saw or left it.
    view: dict[EventKey, LedgerItem]
    #: Whether later attempts need not verify the conversation again.
    verified: bool
    #: The lookup's error, for the first attempt to record as its own.
    unverified: Exception | None
    #: Outcomes of the items it ended, for `PassResults`, with the generation of the item
    #: each was recorded for: the other tasks' items, and its own (a parked pass is sent
    #: again when the drain ends while its first task comes back at the hold's end: that
    #: twin ends on the record instead of a pass that queries the ledger again).
    settled: dict[EventKey, tuple[str, str | None]] = field(default_factory=dict)
    own: ReplayOutcome | None = None
    hold: Hold | None = None
    given_up: Hold | None = None
    #: No attempt may start after this (epoch seconds): it could not end in time.
    last_start: float = float("inf")
    attempted: bool = False
    #: The pass stopped at its time bound (or lost its lock) before it was done, at
    #: this item (the first it did not attempt).
    stopped: bool = False
    stopped_at: LedgerItem | None = None

    def goes_past(self, waiting: Hold) -> bool:
        """Note an older item that waits: the line stops behind it (False) until its hold
        has expired, after which it is passed and order is given up for the newer ones."""
        if waiting.expires <= self.now:
            self.given_up = waiting
            return True
        self.hold = waiting
        return False

    def out_of_order_note(self) -> str | None:
        if self.given_up is None:
            return None
        return (
            f"replayed out of order: the older event {self.given_up.item.event_id} "
            "still waited for its retry after REPLAY_ORDER_HOLD_SECONDS"
        )

    def done(self, finished: LedgerItem, outcome: ReplayOutcome) -> None:
        """Record an attempt the pass ended."""
        self.unverified = None  # its answer is recorded; later items ask again
        self.view[finished.key] = finished
        self.verified = self.verified or outcome is ReplayOutcome.REPLAYED
        if finished.key == self.key:
            self.own = outcome
        self.settled[finished.key] = (outcome.value, finished.redriven_at)


class OrderedPass:
    """Replays a conversation's line for one target in event-time order, in one pass."""

    def __init__(
        self,
        *,
        ledger: LedgerStore,
        attempts: Attempts,
        directory: ConversationDirectory | None,
        policy: RetryPolicy,
        options: ReplayOptions,
        requeue: ReplayEnqueuer,
        results: PassResults | None,
        single: Callable[[EventKey, str | None], ReplayOutcome],
        arrivals: Arrivals | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """`single` replays one item alone (for an item the conversation index has not
        caught up with yet); `arrivals` tells of events still on their way from the DLQ."""
        self._arrivals = arrivals
        self._ledger = ledger
        self._attempts = attempts
        self._directory = directory
        self._policy = policy
        self._options = options
        self._requeue = requeue
        self._results = results
        self._single = single
        self._clock = clock

    def run(
        self,
        key: EventKey,
        conversation_id: str,
        task_id: str | None,
        held: Held,
        *,
        parked: bool = False,
    ) -> ReplayOutcome:
        """Answers `key`'s own outcome, or raises `Wait` when an older item holds it back.

        `parked`: this is the line's pass parked for the DLQ's drain, whose other tasks
        ended `parked`; each item it ends failed, exhausted or rejected gets a task that
        ends on its record (`EventNotReplayed`), so that every such event is still one
        failed task (Flower's Failed).

        Stops at an item that must wait (a retry not yet due): the newer items wait behind
        it, up to `order_hold_seconds` after it began to wait; then they go, and their
        history says order was given up. Bounded: no attempt starts unless it can end
        before the task's time limit, and the lock `held` gets its whole TTL again before
        each attempt; what is left goes back to the items' own tasks.
        """
        context = {"event_id": key.event_id, "target_arn": key.target_arn, "task_id": task_id}
        if self._arrivals is not None and self._arrivals.recently_draining():
            # Its hold ended while the DLQ drains: the line's next events park a pass
            # again instead of waiting behind this one (before the query: what arrived
            # until now is in the ledger).
            self._arrivals.leave(conversation_id, key)
        items = self._ledger.by_conversation(conversation_id)
        line = line_up(items, key)
        if not any(item.key == key for item in line):
            # The index has not caught up with a fresh item yet: replay it alone.
            log.info("not in its conversation's index yet; replayed unordered", extra=context)
            return self._single(key, task_id)
        now = self._clock.now()
        state = _Pass(
            key,
            conversation_id,
            now,
            {item.key: item for item in items if item.status is not Status.REJECTED},
            *self._verify_ahead(conversation_id, line, now),
        )
        options = self._options
        state.last_start = (
            now + options.time_limit_seconds - options.lock_wait_seconds
        ) - options.attempt_bound_seconds
        try:
            for item in line:
                if not self._item(state, item, task_id, context, held):
                    break
        finally:
            if self._results is not None and state.settled:
                self._results.record(conversation_id, state.settled, own=key)
            if parked:  # its own item's retry or wait raises: the others still count
                self._report_not_replayed(state, conversation_id)
        imminent = self._options.imminent_seconds
        if settled(state.view.values(), imminent_within=imminent, now=self._clock.now()):
            # One tracking run when the conversation comes to rest, not one per outcome;
            # it summarises what this pass saw instead of querying the ledger again.
            self._attempts.tell(conversation_id, snapshot=list(state.view.values()))
        if state.stopped and state.own is not None and state.stopped_at is not None:
            # The rest of the line may have no task of its own (a drain's parked pass
            # stands for them): it goes on in a new task.
            rest = state.stopped_at
            self._requeue.enqueue_replay(
                rest.key,
                lock=conversation_id,
                countdown=random.uniform(0.1, 0.5),
                generation=rest.redriven_at,
            )
            log.info("the pass reached its time bound; a new task goes on", extra=context)
        if state.own is not None:
            return state.own
        if state.stopped:
            log.info("the pass reached its time bound; the task comes back", extra=context)
            raise Wait(
                f"the pass over conversation {conversation_id} reached its time bound before "
                "this event; it goes on in a new task",
                retry_after=random.uniform(0.1, 0.5),
            )
        hold = state.hold
        assert hold is not None, "a pass that never reached its own item stopped at a hold"
        raise Wait(
            f"an older event of conversation {conversation_id} for this target "
            f"({hold.item.event_id}) waits for its retry; this one goes after it",
            retry_after=hold.wait(self._clock.now()) + random.uniform(0.5, 2.0),
        )

    def _item(
        self,
        state: _Pass,
        item: LedgerItem,
        task_id: str | None,
        context: dict[str, str | None],
        held: Held,
    ) -> bool:
        """One item of the pass: claim and attempt it if due, else note why not.

        Answers whether the pass goes on to the next item (False: it waits behind this one,
        or the pass stops at its bound).
        """
        mine = item.key == state.key
        claimed = None
        if item.status not in FINAL_STATUSES and is_due(item, state.now):
            if state.attempted and (self._clock.now() > state.last_start or not held.renew()):
                state.stopped, state.stopped_at = True, item
                return False
            try:
                claimed = self._ledger.claim(item.key, lease_seconds=self._options.lease_seconds)
            except ClaimRefused as refused:
                if refused.current is None:
                    return True
                item = state.view[item.key] = refused.current
        if claimed is None:
            if item.status in FINAL_STATUSES:
                if mine:
                    state.own = self._attempts.already_final(item, context)
                return True
            if mine:
                state.own = ReplayOutcome.SKIPPED  # not due: the retry that scheduled it owns it
            return state.goes_past(Hold.of(item, hold_seconds=self._options.order_hold_seconds))
        state.attempted = True
        try:
            finished = self._attempts.run(
                claimed,
                task_id if mine else None,
                note=state.out_of_order_note(),
                verified=state.verified,
                unverified=state.unverified,
            )
        except StaleClaim:
            log.warning("lost a claim mid-pass; leaving it to its new owner", extra=context)
            if mine:
                state.own = ReplayOutcome.SKIPPED
            return True
        except (Wait, AttemptFailed) as exc:
            if mine:
                raise
            waiting = self._hand_back(claimed, exc, state.conversation_id, state.now)
            state.view[claimed.key] = replace(
                claimed, status=Status.RETRY_SCHEDULED, next_attempt_at=waiting.due
            )
            return state.goes_past(waiting)
        except RecordLost:
            raise
        except Exception:
            self._attempts.release(claimed)
            raise
        state.done(finished, OUTCOME_OF[finished.status])
        return True

    def await_arrivals(self, conversation_id: str, parked: Parked) -> ReplayOutcome | None:
        """Raise `Wait` while events of the conversation may still be on their way from
        the DLQ (`dlq.arrivals`): Redis alone, before the conversation's lock.

        A quiet period's rest: every task comes back when it ends. While the DLQ drains:
        one task of the line parks its pass (`parked`, this task's replay), which the
        receive that ends the drain sends again, and comes back when the hold ends (should
        the drain's end never be seen) to find its item settled by the pass; the line's
        other tasks end, answering PARKED: the pass replays their items.
        """
        if self._arrivals is None:
            return None
        hold = self._arrivals.hold(
            conversation_id, quiet_seconds=self._options.ingest_quiet_seconds
        )
        if hold.wait <= 0:
            return None
        reason = (
            f"events of conversation {conversation_id} may still be on their way from the "
            "DLQ; the pass waits for them (REPLAY_INGEST_QUIET_SECONDS, at most "
            "REPLAY_INGEST_MAX_HOLD_SECONDS)"
        )
        back_in = hold.wait + random.uniform(0.05, 0.3)
        if not hold.draining:
            raise Wait(reason, retry_after=back_in)
        if self._arrivals.take_turn(conversation_id, parked.key, hold.ends_in):
            self._arrivals.park(conversation_id, parked)
            if not self._arrivals.is_draining():
                # The drain ended between the hold's read and the park: its end may have
                # sent the parked passes already. Come back after the quiet period.
                quiet = self._options.ingest_quiet_seconds + random.uniform(0.05, 0.3)
                raise Wait(reason, retry_after=quiet)
            raise Wait(f"{reason}; its pass is sent again when the drain ends", retry_after=back_in)
        # Another task of the line holds the turn: its parked pass, sent when the drain
        # ends (or its own return when the hold does), replays this item too.
        log.debug(
            "left to its line's pass, parked for the DLQ's drain",
            extra={"event_id": parked.key.event_id, "target_arn": parked.key.target_arn},
        )
        return ReplayOutcome.PARKED

    def _report_not_replayed(self, state: _Pass, conversation_id: str) -> None:
        """A task for each item of the parked pass, other than its own, that it ended
        failed, exhausted or rejected: it ends on the pass's record, failing. Only a
        count: a broker that refuses it is logged (the ledger has the outcome)."""
        for settled_key, (outcome, generation) in state.settled.items():
            if settled_key != state.key and outcome in NOT_REPLAYED:
                try:
                    self._requeue.enqueue_replay(
                        settled_key, lock=conversation_id, generation=generation
                    )
                except Exception as exc:
                    log.warning(
                        f"could not send the task that reports this {outcome} event ({exc})",
                        extra={"event_id": settled_key.event_id, "outcome": outcome},
                    )

    def _verify_ahead(
        self, conversation_id: str, line: list[LedgerItem], now: float
    ) -> tuple[bool, Exception | None]:
        """Verify the conversation once, before any claim.

        Answers whether the pass's attempts need not verify again, and the error the
        lookup raised, for the first attempt to record as its own (without a second
        call). A wait (a batch about to verify it, the budget) ends the pass before it
        claims anything, so waiting costs no ledger write.
        """
        if not self._options.verify_conversation or self._directory is None:
            return True, None
        if not any(item.status not in FINAL_STATUSES and is_due(item, now) for item in line):
            return False, None
        if any(item.redriven_untried for item in line):
            # An operator redrove an item after a fix: ask Genesys again (a 404 cached
            # for minutes may no longer hold).
            self._directory.forget(conversation_id)
        try:
            known = self._directory.lookup(conversation_id, await_prefetch=True)
        except BudgetWait as wait:
            raise Wait(str(wait), retry_after=wait.retry_after) from None
        except (RetryLater, GiveUp, ConfigurationError) as exc:
            return False, exc
        return known.exists or self._options.redeliver_missing_conversation, None

    def _hand_back(
        self, claimed: LedgerItem, exc: Wait | AttemptFailed, conversation_id: str, now: float
    ) -> Hold:
        """Leave another item of the pass to a task of its own, at its retry's time."""
        if isinstance(exc, AttemptFailed):
            delay = self._policy.countdown(
                max(0, claimed.attempts - 1), retry_after=exc.retry_after
            )
            exc.schedule(delay)
        else:
            delay = exc.retry_after or 1.0  # the attempt already postponed the item
        self._requeue.enqueue_replay(
            claimed.key, lock=conversation_id, countdown=delay, generation=claimed.redriven_at
        )
        # A held target holds every item of this line alike: order is kept, however long.
        held = isinstance(exc, TargetHeld)
        expires = inf if held else waiting_since(claimed) + self._options.order_hold_seconds
        return Hold(claimed, now + delay, expires)
