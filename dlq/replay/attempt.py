"""One attempt of one claimed item: verify, send once, and record the outcome.

Redelivery is the critical path. Nothing Genesys-related stands before it except the
(cached, rate-limited) conversation lookup, and only when verification is on; the
bookkeeping on the conversation is left to the tracking task.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dlq.clock import SYSTEM_CLOCK, Clock, moment
from dlq.errors import BudgetWait, ConfigurationError, GiveUp, Rejected, RetryLater
from dlq.genesys.directory import ConversationDirectory, ConversationMissing
from dlq.ledger import LedgerItem, LedgerStore, StaleClaim, Status
from dlq.observe import NO_METRICS, MetricsObserver
from dlq.replay.holds import NO_HOLDS, BreakerRead, TargetHeld, TargetHolds
from dlq.replay.outcomes import (
    AttemptFailed,
    RecordLost,
    ReplayOptions,
    ReplayOutcome,
    SendInterrupted,
    Wait,
)
from dlq.replay.ports import News, Parking, TargetSender
from dlq.replay.recorded import (
    age_start,
    code_of,
    correlation_of,
    observed,
    receipt_of,
    text_of,
)
from dlq.replay.waiting import GenesysWait, genesys_wait
from dlq.replay.wording import out_of_attempts, too_old
from dlq.retry import RetryPolicy, cap_countdown
from dlq.targets.delivery import Delivery

#: One logger for the whole use case: its records keep the name `dlq.replay`.
log = logging.getLogger("dlq.replay")

#: A retry is recorded as due this much before its countdown ends, so that a worker
#: whose clock runs a little ahead still finds it claimable.
CLOCK_SLACK_SECONDS = 2.0


class Attempts:
    """Makes the attempt a claim holds, and writes what came of it to the ledger."""

    def __init__(
        self,
        *,
        ledger: LedgerStore,
        redeliverer: TargetSender,
        directory: ConversationDirectory | None,
        news: News,
        policy: RetryPolicy,
        options: ReplayOptions,
        ordered: bool,
        parking: Parking | None = None,
        clock: Clock = SYSTEM_CLOCK,
        metrics: MetricsObserver = NO_METRICS,
        holds: TargetHolds = NO_HOLDS,
    ) -> None:
        """`ordered`: outcomes are told to tracking when the conversation comes to rest
        (by the pass), not one by one."""
        self._ledger = ledger
        self._redeliverer = redeliverer
        self._directory = directory
        self._news = news
        self._policy = policy
        self._options = options
        self._ordered = ordered
        self._parking = parking
        self._clock = clock
        self._metrics = metrics
        self._holds = holds

    def run(
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
        if claimed.redriven_at is not None and claimed.attempts == 1:
            self._forget_cached(claimed, conversation=not verified and unverified is None)
        if claimed.attempts > self._policy.max_attempts:
            reason = out_of_attempts(claimed.last_error, attempts=self._policy.max_attempts)
            return self.exhaust(claimed, reason, "AttemptsExhausted", task_id)
        if self._policy.too_old(
            age_start(claimed), moment(self._holds.age_now(claimed, self._clock.now()))
        ):
            return self.exhaust(claimed, too_old(claimed.last_error), "MaxEventAge", task_id)
        try:
            self._check_boundary(claimed)
            breaker = self._holds.check(claimed)  # paused, an open breaker: the item waits
            self._check_conversation(claimed, verified=verified, unverified=unverified)
            delivery = self._send(claimed, breaker)
        except Rejected as exc:
            said = text_of(exc)
            log.warning(
                f"replay rejected, nothing sent: {said}", extra={**context, "outcome": "rejected"}
            )
            rejected = ReplayOutcome.REJECTED
            return self._finish(
                claimed, Status.REJECTED, rejected, said, task_id, code=exc.code, note=note
            )
        except TargetHeld as held:
            raise self._holds.postponed(self._ledger, claimed, held) from None
        except Wait:
            raise  # waited for Genesys: the item is already handed back
        except BudgetWait as wait:
            until = self._clock.now() + (wait.retry_after or 1.0)
            self._ledger.postpone(claimed, until=until)
            raise Wait(str(wait), retry_after=wait.retry_after) from None
        except GiveUp as exc:
            said = text_of(exc)
            log.warning(
                f"replay failed for good: {said}",
                extra={**context, "outcome": "failed", "correlation_id": correlation_of(exc)},
            )
            failed = ReplayOutcome.FAILED
            return self._finish(
                claimed, Status.FAILED, failed, said, task_id, code=code_of(exc), note=note
            )
        except (RetryLater, ConfigurationError) as exc:
            error, code = text_of(exc), code_of(exc)
            if not self._policy.attempts_left(claimed.attempts):
                final = out_of_attempts(error, attempts=claimed.attempts)
                return self.exhaust(claimed, final, code, task_id)
            log.info(
                f"replay attempt failed, will retry: {error}",
                extra={**context, "outcome": "retry", "correlation_id": correlation_of(exc)},
            )
            retry_after = exc.retry_after if isinstance(exc, RetryLater) else None
            raise AttemptFailed(
                error,
                retry_after=retry_after,
                schedule=lambda delay: self._schedule(claimed, error, code, delay, task_id),
            ) from exc
        log.info("replayed", extra={**context, "outcome": "replayed"})
        return self._record_delivery(claimed, delivery, task_id, note)

    def already_final(self, item: LedgerItem, context: dict[str, str | None]) -> ReplayOutcome:
        """What a task answers for an item that an earlier attempt ended."""
        if item.status is Status.REPLAYED:
            log.info("suppressed a duplicate: already replayed", extra=context)
            return ReplayOutcome.SUPPRESSED
        return ReplayOutcome.SKIPPED

    def exhaust(
        self, claimed: LedgerItem, reason: str, code: str, task_id: str | None
    ) -> LedgerItem:
        """End the item `exhausted` (and park its message, when a parking queue is set)."""
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

    def release(self, claimed: LedgerItem) -> None:
        """After an unexpected error mid-attempt: make the item claimable at once for the
        retry Celery schedules, instead of leaving it leased until the lease lapses."""
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

    def tell(self, conversation_id: str, *, snapshot: Sequence[LedgerItem] = ()) -> None:
        """News for tracking; a failure to tell is logged, never raised."""
        try:
            self._news.mark(conversation_id, snapshot=snapshot)
        except Exception:
            # Tracking is bookkeeping: the reconciler catches up with what is lost here.
            log.warning("could not schedule tracking", extra={"conversation_id": conversation_id})

    def _check_conversation(
        self, claimed: LedgerItem, *, verified: bool, unverified: Exception | None
    ) -> None:
        """The conversation's verification (or what the pass's raised): its failure is the
        attempt's, unless it is about Genesys, not the conversation: then the item waits."""
        try:
            if unverified is not None:
                raise unverified
            if not verified:
                self._verify(claimed)
        except (RetryLater, GiveUp, ConfigurationError) as exc:
            waiting = genesys_wait(exc)
            if waiting is None:
                raise
            self._wait_for_genesys(claimed, waiting, exc)

    def _check_boundary(self, claimed: LedgerItem) -> None:
        """The ingest's trust-boundary check again, with the workers' settings: an item
        admitted before it (or by an ingest configured otherwise) is judged by it too."""
        boundary = self._options.boundary
        if boundary is None:
            return
        refusal = boundary.refusal(claimed.rule_arn, claimed.source or "")
        if refusal is not None:
            raise Rejected(refusal.reason, code=refusal.code)

    def _send(self, claimed: LedgerItem, breaker: BreakerRead | None) -> Delivery:
        """The one send of the attempt. Anything unforeseen that stops it midway (a task's
        soft time limit under prefork, a bug) leaves the target's side unknown: that is
        a failed attempt that may have been delivered, retried after backoff and
        recorded as such, never a silent release for an immediate retry."""
        try:
            with self._holds.sending(claimed, read=breaker):
                return self._redeliverer.redeliver(
                    target_arn=claimed.target_arn,
                    event_id=claimed.event_id,
                    body=claimed.replay_body,  # an operator's edit, if any (redrive --body-file)
                    conversation_id=claimed.conversation_id,
                    rule_arn=claimed.rule_arn or "",
                    override=claimed.target_override,
                )
        except (RetryLater, GiveUp, ConfigurationError):
            raise
        except Exception as exc:
            raise SendInterrupted(
                f"the send was interrupted ({type(exc).__name__}: {exc}): the target may have "
                "received the event; it is sent again after the backoff"
            ) from exc

    def _record_delivery(
        self, claimed: LedgerItem, delivery: Delivery, task_id: str | None, note: str | None
    ) -> LedgerItem:
        """Write `replayed`, again and again while the lease holds: the event is delivered,
        and releasing the item over a ledger hiccup would send it a second time."""
        pause = 0.25
        while True:
            try:
                return self._finish(
                    claimed,
                    Status.REPLAYED,
                    ReplayOutcome.REPLAYED,
                    None,
                    task_id,
                    receipt=delivery,
                    note=note,
                )
            except StaleClaim:
                raise
            except Exception as exc:
                left = (claimed.lease_until or 0.0) - self._clock.now()
                if left < pause + self._options.ledger_call_seconds:
                    raise RecordLost(
                        f"event {claimed.event_id} reached {delivery.delivered_to}, but the "
                        f"ledger refused its outcome until the lease ran out ({exc}); the "
                        "item comes back when its lease lapses, and may be sent again"
                    ) from exc
                log.warning(
                    f"delivered, but the ledger refused the outcome ({exc}); writing it again "
                    f"in {pause:.2f} s",
                    extra={"event_id": claimed.event_id, "target_arn": claimed.target_arn},
                )
                self._clock.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _wait_for_genesys(self, claimed: LedgerItem, waiting: GenesysWait, exc: Exception) -> None:
        """Hand the item back unattempted: its target is not the problem, Genesys is.
        Bounded by the item's age budget (checked at every claim), not its attempts."""
        delay = self._policy.countdown(claimed.waits, retry_after=waiting.retry_after)
        # The same words for every wait of one cause, so the history keeps them as one entry.
        status = getattr(exc, "status", None)
        reason = f"{waiting.reason} ({type(exc).__name__}{f' {status}' if status else ''})"
        self._ledger.postpone(
            claimed, until=self._clock.now() + delay, reason=reason, code=waiting.code
        )
        log.warning(
            f"replay waits for Genesys, no attempt spent, looking again in {delay:.0f} s: "
            f"{reason}: {text_of(exc)}",
            extra={
                "event_id": claimed.event_id,
                "target_arn": claimed.target_arn,
                "conversation_id": claimed.conversation_id,
                "outcome": "waiting",
                "correlation_id": correlation_of(exc),
            },
        )
        raise Wait(reason, retry_after=delay) from exc

    def _forget_cached(self, claimed: LedgerItem, *, conversation: bool) -> None:
        """The first attempt after a redrive: what was cached before the operator's fix
        (the target's rule and connection; the conversation's lookup, unless this pass
        has just looked it up) must not decide it."""
        self._redeliverer.forget(claimed.target_arn, rule_arn=claimed.rule_arn or "")
        if conversation and self._directory is not None and claimed.conversation_id:
            self._directory.forget(claimed.conversation_id)

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
            sent=receipt_of(receipt) if receipt else None,
            note=note,
        )
        self._metrics.finished(observed(finished))
        return finished

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
            self.tell(claimed.conversation_id)
