"""One replay attempt of one (event id, target): lock, claim, verify, redeliver, record.

Redelivery is the critical path. Nothing Genesys-related stands before it except the
(cached, rate-limited) conversation lookup, and only when verification is on; the
bookkeeping on the conversation is left to the tracking task.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from dlq.clock import SYSTEM_CLOCK, Clock, moment
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
from dlq.locks import ConversationLocks, lock_name
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

    def mark(self, conversation_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    verify_conversation: bool = True
    redeliver_missing_conversation: bool = False
    lease_seconds: float = 150.0


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
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._ledger = ledger
        self._redeliverer = redeliverer
        self._locks = locks
        self._directory = directory
        self._news = news
        self._policy = policy
        self._options = options
        self._parking = parking
        self._clock = clock

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

        with self._locks.hold(lock) as held:
            if not held:
                raise Wait("the conversation is busy", retry_after=random.uniform(0.5, 2.0))
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
                return self._attempt(claimed, task_id)
            except StaleClaim:
                # Our lease lapsed and another worker took the item over: it is theirs.
                log.warning(
                    "lost the claim mid-attempt; leaving it to its new owner", extra=context
                )
                return ReplayOutcome.SKIPPED
            except (Wait, AttemptFailed):
                raise
            except Exception:
                self._release(claimed)
                raise

    def _already_final(self, item: LedgerItem, context: dict[str, str | None]) -> ReplayOutcome:
        if item.status is Status.REPLAYED:
            log.info("suppressed a duplicate: already replayed", extra=context)
            return ReplayOutcome.SUPPRESSED
        return ReplayOutcome.SKIPPED

    def _attempt(self, claimed: LedgerItem, task_id: str | None) -> ReplayOutcome:
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
            return self._finish(claimed, Status.FAILED, failed, str(exc), task_id, code=_code(exc))
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
            claimed, Status.REPLAYED, ReplayOutcome.REPLAYED, None, task_id, receipt=delivery
        )

    def _verify(self, claimed: LedgerItem) -> None:
        if not self._options.verify_conversation or self._directory is None:
            return
        if claimed.conversation_id is None:
            return
        known = self._directory.lookup(claimed.conversation_id)
        if known.exists or self._options.redeliver_missing_conversation:
            return
        raise ConversationMissing(
            f"conversation {claimed.conversation_id} no longer exists in Genesys (404), so the "
            "event was not redelivered; to redeliver such events anyway set "
            "REPLAY_REDELIVER_MISSING_CONVERSATION=true and redrive them"
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
    ) -> ReplayOutcome:
        self._ledger.finish(
            claimed,
            status,
            outcome=outcome.value,
            error=error,
            error_code=code,
            task_id=task_id,
            sent=_receipt(receipt) if receipt else None,
        )
        self._tell(claimed)
        return outcome

    def _exhaust(
        self, claimed: LedgerItem, reason: str, code: str, task_id: str | None
    ) -> ReplayOutcome:
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
        self._tell(claimed)

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

    def _tell(self, claimed: LedgerItem) -> None:
        if claimed.conversation_id is None:
            return
        try:
            self._news.mark(claimed.conversation_id)
        except Exception:
            # Tracking is bookkeeping: the reconciler catches up with what is lost here.
            log.warning(
                "could not schedule tracking", extra={"conversation_id": claimed.conversation_id}
            )


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
    starts = [t for t in (_parse_time(item.event_time), _parse_time(item.redriven_at)) if t]
    return max(starts, default=None)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
