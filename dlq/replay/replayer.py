"""The replayer: takes a task's (event id, target) and chooses how to replay it.

Unordered, one attempt of the item alone; in order (`REPLAY_ORDER=conversation`), the
conversation's ordered pass, under its lock. Either way a short, non-blocking Redis lock
keeps two workers off one conversation, and the ledger's conditional claim is what
guarantees that an event is not replayed twice.
"""

from __future__ import annotations

import logging
import random

from dlq.arrivals import Arrivals, Parked
from dlq.broker import ReplayEnqueuer
from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.events import EventKey
from dlq.genesys.directory import ConversationDirectory
from dlq.ledger import FINAL_STATUSES, ClaimRefused, LedgerStore, StaleClaim
from dlq.locks import ConversationLocks, conversation_of, lock_name
from dlq.observe import NO_METRICS, MetricsObserver
from dlq.replay.attempt import Attempts
from dlq.replay.holds import NO_HOLDS, TargetHolds
from dlq.replay.ordered import NOT_REPLAYED, OrderedPass
from dlq.replay.outcomes import (
    OUTCOME_OF,
    AttemptFailed,
    RecordLost,
    ReplayOptions,
    ReplayOutcome,
    Wait,
)
from dlq.replay.ports import News, Parking, TargetSender
from dlq.replay.results import PassResults
from dlq.retry import RetryPolicy

log = logging.getLogger("dlq.replay")


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
        arrivals: Arrivals | None = None,
        clock: Clock = SYSTEM_CLOCK,
        metrics: MetricsObserver = NO_METRICS,
        holds: TargetHolds = NO_HOLDS,
    ) -> None:
        """`requeue` and `results` serve ordered passes: without `requeue` replay is
        unordered whatever the options say; without `results` the tasks of items that a
        pass settled find out through the ledger instead of Redis."""
        self._ledger = ledger
        self._locks = locks
        self._options = options
        self._results = results
        self._attempts = Attempts(
            ledger=ledger,
            redeliverer=redeliverer,
            directory=directory,
            news=news,
            policy=policy,
            options=options,
            ordered=options.in_order and requeue is not None,
            parking=parking,
            clock=clock,
            metrics=metrics,
            holds=holds,
        )
        self._pass = (
            OrderedPass(
                ledger=ledger,
                attempts=self._attempts,
                directory=directory,
                policy=policy,
                options=options,
                requeue=requeue,
                results=results,
                single=self._single,
                arrivals=arrivals,
                clock=clock,
            )
            if options.in_order and requeue is not None
            else None
        )

    def replay(
        self,
        key: EventKey,
        *,
        lock: str | None = None,
        task_id: str | None = None,
        generation: str | None = None,
        parked: bool = False,
    ) -> ReplayOutcome:
        """Make one attempt; raises `Wait` or `AttemptFailed` when it must come back later.

        `lock` is the item's `lock_name`, which the task carries so that the claim is the
        first ledger request; without it (a task queued before it travelled) the item is
        read first to learn its conversation. `generation` is the item's `redriven_at` as
        the task was enqueued for it: a pass's record of another generation is no answer.
        `parked`: the task is its line's pass, parked for the DLQ's drain (`OrderedPass`).
        """
        context = {"event_id": key.event_id, "target_arn": key.target_arn, "task_id": task_id}
        if lock is None:
            item = self._ledger.get(key)
            if item is None:
                log.error("no ledger item for this replay; nothing to do", extra=context)
                return ReplayOutcome.SKIPPED
            if item.status in FINAL_STATUSES:
                return self._attempts.already_final(item, context)
            lock = lock_name(key, item.conversation_id)

        conversation_id = conversation_of(lock) if self._pass is not None else None
        settled_by_pass = self._settled_by_pass(conversation_id, key, generation, context)
        if settled_by_pass is not None:
            return settled_by_pass
        if conversation_id is not None and self._pass is not None:
            left = self._pass.await_arrivals(conversation_id, Parked(key, lock, generation))
            if left is not None:
                return left
        with self._locks.hold(lock, wait=self._options.lock_wait_seconds) as held:
            if not held:
                raise Wait("the conversation is busy", retry_after=random.uniform(0.5, 2.0))
            if conversation_id is not None and self._pass is not None:
                if held.waited:
                    # The pass we waited for has most likely settled this item too.
                    settled_by_pass = self._settled_by_pass(
                        conversation_id, key, generation, context
                    )
                    if settled_by_pass is not None:
                        return settled_by_pass
                return self._pass.run(key, conversation_id, task_id, held, parked=parked)
            return self._single(key, task_id)

    def _settled_by_pass(
        self,
        conversation_id: str | None,
        key: EventKey,
        generation: str | None,
        context: dict[str, str | None],
    ) -> ReplayOutcome | None:
        """The outcome an ordered pass recorded for this generation of `key`, if one did."""
        if conversation_id is None or self._results is None:
            return None
        settled = self._results.settled(conversation_id, key, generation=generation)
        if settled is None:
            return None
        # Its outcome was logged by the pass that settled it.
        log.debug("settled by its conversation's ordered pass", extra=context)
        if settled.reported and settled.outcome in NOT_REPLAYED:
            # It was the pass's own item: the pass's task failed for it already (Flower's
            # Failed counts each event once).
            return ReplayOutcome.SKIPPED
        return ReplayOutcome(settled.outcome)

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
                return self._attempts.already_final(refused.current, context)
            log.info("claimed elsewhere or not yet due; leaving it", extra=context)
            return ReplayOutcome.SKIPPED
        try:
            finished = self._attempts.run(claimed, task_id)
        except StaleClaim:
            # Our lease lapsed and another worker took the item over: it is theirs.
            log.warning("lost the claim mid-attempt; leaving it to its new owner", extra=context)
            return ReplayOutcome.SKIPPED
        except (Wait, AttemptFailed, RecordLost):
            raise
        except Exception:
            self._attempts.release(claimed)
            raise
        if claimed.conversation_id:
            self._attempts.tell(claimed.conversation_id)
        return OUTCOME_OF[finished.status]
