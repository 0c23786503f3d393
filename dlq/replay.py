"""One replay attempt of one (event id, target): lock, claim, verify, redeliver, record.

Redelivery is the critical path. Nothing Genesys-related stands before it except the
(cached, rate-limited) conversation lookup, and only when verification is on; the
bookkeeping on the conversation is left to the tracking task.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from dlq.broker import ReplayEnqueuer
from dlq.clock import SYSTEM_CLOCK, Clock, moment, parse_iso
from dlq.errors import BudgetWait, ConfigurationError, GiveUp, RetryLater
from dlq.events import EventKey
from dlq.genesys.directory import ConversationDirectory, ConversationMissing
from dlq.ledger import (
    FINAL_STATUSES,
    ClaimRefused,
    LedgerItem,
    LedgerStore,
    Receipt,
    StaleClaim,
    Status,
)
from dlq.locks import ConversationLocks, conversation_of, lock_name
from dlq.metrics.events import NO_METRICS, MetricsObserver
from dlq.ordering import Hold, PassResults, is_due, line_up, settled, waiting_since
from dlq.retry import RetryPolicy, cap_countdown
from dlq.targets.delivery import Delivery

log = logging.getLogger(__name__)

#: A retry is recorded as due this much before its countdown ends, so that a worker
#: whose clock runs a little ahead still finds it claimable.
CLOCK_SLACK_SECONDS = 2.0


class ReplayOutcome(StrEnum):
    REPLAYED = "replayed"
    FAILED = "failed"
    EXHAUSTED = "exhausted"
    SUPPRESSED = "duplicate_suppressed"
    SKIPPED = "skipped"


class Wait(RetryLater):
    """Come back after `retry_after` seconds; no attempt was spent (lock busy, budget)."""


class AttemptFailed(RetryLater):
    """The attempt failed transiently. `schedule(delay)` records the retry in the ledger;
    whoever decides the delay (the Celery retry) must call it before scheduling."""

    def __init__(
        self, message: str, *, retry_after: float | None, schedule: Callable[[float], None]
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.schedule = schedule


class TargetSender(Protocol):
    """Sends an event to the target that missed it (`dlq.targets.Redeliverer`)."""

    def redeliver(
        self,
        *,
        target_arn: str,
        event_id: str,
        body: str,
        conversation_id: str | None = None,
        rule_arn: str = "",
        override: str | None = None,
    ) -> Delivery: ...


class Parking(Protocol):
    def park(self, item: LedgerItem, reason: str) -> None: ...


class News(Protocol):
    """Tells the tracking side that a conversation has a new outcome."""

    def mark(self, conversation_id: str, *, snapshot: Sequence[LedgerItem] = ()) -> None: ...


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    verify_conversation: bool = True
    redeliver_missing_conversation: bool = False
    lease_seconds: float = 150.0
    #: `REPLAY_ORDER=conversation`: a conversation's events reach a target in time order.
    in_order: bool = True
    order_hold_seconds: float = 300.0
    #: A retry due within this long counts as about to happen (tracking waits for it).
    imminent_seconds: float = 30.0
    #: How long a task waits for its conversation's lock before it is sent back to the
    #: queue: a pass usually ends sooner, and a re-sent task costs a broker round trip.
    lock_wait_seconds: float = 1.0


@dataclass(slots=True)
class _Pass:
    """What one ordered pass has seen and settled so far (see `Replayer._in_order`)."""

    key: EventKey
    conversation_id: str
    now: float
    #: Every item of the conversation, as the pass last saw or left it.
    view: dict[EventKey, LedgerItem]
    #: Whether later attempts need not verify the conversation again.
    verified: bool
    #: The lookup's error, for the first attempt to record as its own.
    unverified: Exception | None
    #: Outcomes of the other tasks' items, for `PassResults`.
    settled: dict[EventKey, ReplayOutcome] = field(default_factory=dict)
    own: ReplayOutcome | None = None
    hold: Hold | None = None
    given_up: Hold | None = None

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
        else:
            self.settled[finished.key] = outcome


class Replayer:
    """Turns a ledger item into a redelivery, or into a recorded reason why not."""

    def __init__(
        self,
        *,
        ledger: LedgerStore,
        redeliverer: TargetSender,
        locks: ConversationLocks,
        directory: ConversationDirectory | None,
        news: News,
        policy: RetryPolicy,
        options: ReplayOptions,
        parking: Parking | None = None,
        requeue: ReplayEnqueuer | None = None,
        results: PassResults | None = None,
        clock: Clock = SYSTEM_CLOCK,
        metrics: MetricsObserver = NO_METRICS,
    ) -> None:
        """`requeue` and `results` serve ordered passes: without `requeue` replay is
        unordered whatever the options say; without `results` the tasks of items that a
        pass settled find out through the ledger instead of Redis."""
        self._ledger = ledger
        self._redeliverer = redeliverer
        self._locks = locks
        self._directory = directory
        self._news = news
        self._policy = policy
        self._options = options
        self._parking = parking
        self._requeue = requeue
        self._results = results
        self._clock = clock
        self._metrics = metrics

    def replay(
        self, key: EventKey, *, lock: str | None = None, task_id: str | None = None
    ) -> ReplayOutcome:
        """Make one attempt; raises `Wait` or `AttemptFailed` when it must come back later.

        `lock` is the item's `lock_name`, which the task carries so that the claim is the
        first ledger request; without it (a task queued before it travelled) the item is
        read first to learn its conversation.
        """
        context = {"event_id": key.event_id, "target_arn": key.target_arn, "task_id": task_id}
        if lock is None:
            item = self._ledger.get(key)
            if item is None:
                log.error("no ledger item for this replay; nothing to do", extra=context)
                return ReplayOutcome.SKIPPED
            if item.status in FINAL_STATUSES:
                return self._already_final(item, context)
            lock = lock_name(key, item.conversation_id)

        conversation_id = conversation_of(lock) if self._ordered else None
        settled_by_pass = self._settled_by_pass(conversation_id, key, context)
        if settled_by_pass is not None:
            return settled_by_pass
        with self._locks.hold(lock, wait=self._options.lock_wait_seconds) as held:
            if not held:
                raise Wait("the conversation is busy", retry_after=random.uniform(0.5, 2.0))
            if conversation_id is not None:
                if held.waited:
                    # The pass we waited for has most likely settled this item too.
                    settled_by_pass = self._settled_by_pass(conversation_id, key, context)
                    if settled_by_pass is not None:
                        return settled_by_pass
                return self._in_order(key, conversation_id, task_id)
            return self._single(key, task_id)

    def _settled_by_pass(
        self, conversation_id: str | None, key: EventKey, context: dict[str, str | None]
    ) -> ReplayOutcome | None:
        """The outcome an ordered pass recorded for `key`, if one did."""
        if conversation_id is None or self._results is None:
            return None
        outcome = self._results.outcome(conversation_id, key)
        if outcome is None:
            return None
        # Its outcome was logged by the pass that settled it.
        log.debug("settled by its conversation's ordered pass", extra=context)
        return ReplayOutcome(outcome)

    @property
    def _ordered(self) -> bool:
        return self._options.in_order and self._requeue is not None

    def _single(self, key: EventKey, task_id: str | None) -> ReplayOutcome:
        """One attempt of one item, whatever its conversation's other items are doing."""
        context = {"event_id": key.event_id, "target_arn": key.target_arn, "task_id": task_id}
        try:
            claimed = self._ledger.claim(key, lease_seconds=self._options.lease_seconds)
        except ClaimRefused as refused:
            if refused.current is None:
                log.error("no ledger item for this replay; nothing to do", extra=context)
                return ReplayOutcome.SKIPPED
            if refused.current.status in FINAL_STATUSES:
                return self._already_final(refused.current, context)
            log.info("claimed elsewhere or not yet due; leaving it", extra=context)
            return ReplayOutcome.SKIPPED
        try:
            finished = self._attempt(claimed, task_id)
        except StaleClaim:
            # Our lease lapsed and another worker took the item over: it is theirs.
            log.warning("lost the claim mid-attempt; leaving it to its new owner", extra=context)
            return ReplayOutcome.SKIPPED
        except (Wait, AttemptFailed):
            raise
        except Exception:
            self._release(claimed)
            raise
        if claimed.conversation_id:
            self._tell(claimed.conversation_id)
        return _OUTCOME[finished.status]

    def _in_order(self, key: EventKey, conversation_id: str, task_id: str | None) -> ReplayOutcome:
        """The conversation's due items for `key`'s target, oldest event first, in one pass.

        Runs under the conversation's lock. Stops at an item that must wait (a retry not
        yet due): the newer items wait behind it, up to `order_hold_seconds` after it
        began to wait; then they go, and their history says order was given up. Answers
        `key`'s own outcome, or raises `Wait` when an older item holds it back.
        """
        context = {"event_id": key.event_id, "target_arn": key.target_arn, "task_id": task_id}
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
        try:
            for item in line:
                if not self._pass_item(state, item, task_id, context):
                    break
        finally:
            if self._results is not None and state.settled:
                self._results.record(
                    conversation_id, {k: outcome.value for k, outcome in state.settled.items()}
                )
        imminent = self._options.imminent_seconds
        if settled(state.view.values(), imminent_within=imminent, now=self._clock.now()):
            # One tracking run when the conversation comes to rest, not one per outcome;
            # it summarises what this pass saw instead of querying the ledger again.
            self._tell(conversation_id, snapshot=list(state.view.values()))
        if state.own is not None:
            return state.own
        hold = state.hold
        assert hold is not None, "a pass that never reached its own item stopped at a hold"
        raise Wait(
            f"an older event of conversation {conversation_id} for this target "
            f"({hold.item.event_id}) waits for its retry; this one goes after it",
            retry_after=hold.wait(self._clock.now()) + random.uniform(0.5, 2.0),
        )

    def _pass_item(
        self, state: _Pass, item: LedgerItem, task_id: str | None, context: dict[str, str | None]
    ) -> bool:
        """One item of an ordered pass: claim and attempt it if due, else note why not.

        Answers whether the pass goes on to the next item (False: it waits behind this one).
        """
        mine = item.key == state.key
        claimed = None
        if item.status not in FINAL_STATUSES and is_due(item, state.now):
            try:
                claimed = self._ledger.claim(item.key, lease_seconds=self._options.lease_seconds)
            except ClaimRefused as refused:
                if refused.current is None:
                    return True
                item = state.view[item.key] = refused.current
        if claimed is None:
            if item.status in FINAL_STATUSES:
                if mine:
                    state.own = self._already_final(item, context)
                return True
            if mine:
                state.own = ReplayOutcome.SKIPPED  # not due: the retry that scheduled it owns it
            return state.goes_past(Hold.of(item, hold_seconds=self._options.order_hold_seconds))
        try:
            finished = self._attempt(
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
        except Exception:
            self._release(claimed)
            raise
        state.done(finished, _OUTCOME[finished.status])
        return True

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
        assert self._requeue is not None
        self._requeue.enqueue_replay(claimed.key, lock=conversation_id, countdown=delay)
        return Hold(claimed, now + delay, waiting_since(claimed) + self._options.order_hold_seconds)

    def _already_final(self, item: LedgerItem, context: dict[str, str | None]) -> ReplayOutcome:
        if item.status is Status.REPLAYED:
            log.info("suppressed a duplicate: already replayed", extra=context)
            return ReplayOutcome.SUPPRESSED
        return ReplayOutcome.SKIPPED

    def _attempt(
        self,
        claimed: LedgerItem,
        task_id: str | None,
        *,
        note: str | None = None,
        verified: bool = False,
        unverified: Exception | None = None,
    ) -> LedgerItem:
        """One send of a claimed item, and its outcome in the ledger. `verified`: the
        conversation was verified earlier in this pass (once per pass is enough);
        `unverified`: what that verification raised, this attempt's failure."""
        context = {
            "event_id": claimed.event_id,
            "target_arn": claimed.target_arn,
            "conversation_id": claimed.conversation_id,
            "attempt": claimed.attempts,
            "task_id": task_id,
        }
        if claimed.attempts > self._policy.max_attempts:
            reason = claimed.last_error or "no attempts left"
            return self._exhaust(claimed, reason, "AttemptsExhausted", task_id)
        if self._policy.too_old(_age_start(claimed), moment(self._clock.now())):
            reason = f"older than REPLAY_MAX_EVENT_AGE_SECONDS; last error: {claimed.last_error}"
            return self._exhaust(claimed, reason, "MaxEventAge", task_id)
        try:
            if unverified is not None:
                raise unverified
            if not verified:
                self._verify(claimed)
            delivery = self._redeliverer.redeliver(
                target_arn=claimed.target_arn,
                event_id=claimed.event_id,
                body=claimed.body,
                conversation_id=claimed.conversation_id,
                rule_arn=claimed.rule_arn or "",
                override=claimed.target_override,
            )
        except BudgetWait as wait:
            until = self._clock.now() + (wait.retry_after or 1.0)
            self._ledger.postpone(claimed, until=until)
            raise Wait(str(wait), retry_after=wait.retry_after) from None
        except GiveUp as exc:
            log.warning(
                f"replay failed for good: {exc}",
                extra={**context, "outcome": "failed", "correlation_id": _correlation(exc)},
            )
            failed = ReplayOutcome.FAILED
            return self._finish(
                claimed, Status.FAILED, failed, str(exc), task_id, code=_code(exc), note=note
            )
        except (RetryLater, ConfigurationError) as exc:
            error, code = str(exc), _code(exc)
            if not self._policy.attempts_left(claimed.attempts):
                return self._exhaust(claimed, error, code, task_id)
            log.info(
                f"replay attempt failed, will retry: {error}",
                extra={**context, "outcome": "retry", "correlation_id": _correlation(exc)},
            )
            retry_after = exc.retry_after if isinstance(exc, RetryLater) else None
            raise AttemptFailed(
                error,
                retry_after=retry_after,
                schedule=lambda delay: self._schedule(claimed, error, code, delay, task_id),
            ) from exc
        log.info("replayed", extra={**context, "outcome": "replayed"})
        return self._finish(
            claimed,
            Status.REPLAYED,
            ReplayOutcome.REPLAYED,
            None,
            task_id,
            receipt=delivery,
            note=note,
        )

    def _verify(self, claimed: LedgerItem) -> None:
        if not self._options.verify_conversation or self._directory is None:
            return
        if claimed.conversation_id is None:
            return
        known = self._directory.lookup(claimed.conversation_id, await_prefetch=True)
        if known.exists or self._options.redeliver_missing_conversation:
            return
        raise ConversationMissing(
            f"conversation {claimed.conversation_id} no longer exists in Genesys (404), so the "
            "event was not redelivered; to redeliver such events anyway set "
            "REPLAY_REDELIVER_MISSING_CONVERSATION=true on the replay workers (they read it: "
            "restart them with it), then redrive them"
        )

    def _finish(
        self,
        claimed: LedgerItem,
        status: Status,
        outcome: ReplayOutcome,
        error: str | None,
        task_id: str | None,
        *,
        code: str | None = None,
        receipt: Delivery | None = None,
        note: str | None = None,
    ) -> LedgerItem:
        finished = self._ledger.finish(
            claimed,
            status,
            outcome=outcome.value,
            error=error,
            error_code=code,
            task_id=task_id,
            sent=_receipt(receipt) if receipt else None,
            note=note,
        )
        self._metrics.finished(finished)
        return finished

    def _exhaust(
        self, claimed: LedgerItem, reason: str, code: str, task_id: str | None
    ) -> LedgerItem:
        if self._parking is not None:
            try:
                self._parking.park(claimed, reason)
            except Exception as exc:
                # The item ends exhausted all the same: a parking queue that refuses every
                # message must not turn an exhausted item into a retry without end.
                log.exception(
                    "could not park an exhausted item; it stays in the ledger",
                    extra={"event_id": claimed.event_id, "target_arn": claimed.target_arn},
                )
                reason = f"{reason}; parking failed ({type(exc).__name__}: {exc})"
        log.warning(
            f"replay exhausted: {reason}",
            extra={"event_id": claimed.event_id, "target_arn": claimed.target_arn},
        )
        exhausted = ReplayOutcome.EXHAUSTED
        return self._finish(claimed, Status.EXHAUSTED, exhausted, reason, task_id, code=code)

    def _schedule(
        self, claimed: LedgerItem, error: str, code: str, delay: float, task_id: str | None
    ) -> None:
        due = self._clock.now() + max(0.0, cap_countdown(delay) - CLOCK_SLACK_SECONDS)
        self._ledger.finish(
            claimed,
            Status.RETRY_SCHEDULED,
            outcome="retry_scheduled",
            error=error,
            error_code=code,
            next_attempt_at=round(due, 3),
            task_id=task_id,
        )
        if claimed.conversation_id and (
            not self._ordered or delay >= self._options.imminent_seconds
        ):
            # Unordered, every outcome is news; in order, a conversation is told once it
            # comes to rest, and a retry far off is a rest worth showing.
            self._tell(claimed.conversation_id)

    def _release(self, claimed: LedgerItem) -> None:
        # An unexpected error mid-attempt: make the item claimable at once for the
        # retry Celery schedules, instead of leaving it leased until the lease lapses.
        try:
            self._ledger.finish(
                claimed,
                Status.RETRY_SCHEDULED,
                outcome="error",
                error="unexpected error in the worker; see its log",
                error_code="WorkerError",
                next_attempt_at=round(self._clock.now(), 3),
            )
        except Exception:
            log.exception("could not release a claim; its lease will lapse instead")

    def _tell(self, conversation_id: str, *, snapshot: Sequence[LedgerItem] = ()) -> None:
        try:
            self._news.mark(conversation_id, snapshot=snapshot)
        except Exception:
            # Tracking is bookkeeping: the reconciler catches up with what is lost here.
            log.warning("could not schedule tracking", extra={"conversation_id": conversation_id})


def _receipt(delivery: Delivery) -> Receipt:
    return Receipt(
        delivered_to=delivery.delivered_to,
        answer=delivery.detail,
        route=delivery.route,
        transformed=delivery.transformed,
        digest=delivery.digest,
    )


def _code(exc: BaseException) -> str:
    """A short, fixed error code for what failed (never a message: agents can read the
    participant attributes it ends up in)."""
    code = getattr(exc, "code", None)
    text = code if isinstance(code, str) and code else type(exc).__name__
    return "".join(c for c in text if c.isalnum() or c in "._-")[:64] or "Error"


def _correlation(exc: BaseException) -> str | None:
    """Genesys's `inin-correlation-id` of a Genesys error, for support to trace it."""
    return getattr(exc, "correlation_id", None)


def _age_start(item: LedgerItem) -> datetime | None:
    """Where the age budget starts: the event's own time, or its latest redrive."""
    starts = [t for t in (parse_iso(item.event_time), parse_iso(item.redriven_at)) if t]
    return max(starts, default=None)


_OUTCOME = {
    Status.REPLAYED: ReplayOutcome.REPLAYED,
    Status.FAILED: ReplayOutcome.FAILED,
    Status.EXHAUSTED: ReplayOutcome.EXHAUSTED,
}
