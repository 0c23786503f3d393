"""`REPLAY_ORDER=conversation`: a conversation's events reach a target in event-time order.

On the in-memory world of conftest: the pass runs under the conversation's lock, the
ledger is the `MemoryLedger`, the pass results live in a fakeredis hash.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator

import pytest

from dlq.errors import BudgetWait
from dlq.events import EventKey
from dlq.ledger import Status
from dlq.locks import ConversationLocks, Held
from dlq.replay import AttemptFailed, PassResults, ReplayOptions, ReplayOutcome, Wait
from dlq.targets.errors import TargetMissing, TargetUnavailable

from .fakes import CONVERSATION_ID, LEASE_SECONDS, TARGET_ARN

HOLD_SECONDS = 300.0
OTHER_TARGET = "arn:aws:sqs:us-east-1:123456789012:other-target"


def unavailable() -> TargetUnavailable:
    return TargetUnavailable("503 from the target", target_arn=TARGET_ARN, code="HTTP503")


@pytest.fixture()
def ordered(make_replayer, enqueuer, cache):
    """A replayer in conversation order, as the worker builds it."""

    def build(*, locks=None, **options):
        return make_replayer(
            requeue=enqueuer,
            results=PassResults(cache),
            options=ReplayOptions(
                lease_seconds=LEASE_SECONDS, order_hold_seconds=HOLD_SECONDS, **options
            ),
            **({"locks": locks} if locks is not None else {}),
        )

    return build


def conversation(receive, count: int, *, seed: int = 7) -> list[EventKey]:
    """`count` events of one conversation put in the ledger in shuffled order; answers
    their keys oldest event first."""
    ages = list(range(count * 10, 0, -10))  # oldest first
    keys: dict[int, EventKey] = {}
    shuffled = ages[:]
    random.Random(seed).shuffle(shuffled)
    for age in shuffled:
        keys[age] = receive(age=age)
    return [keys[age] for age in ages]


def sent_ids(target) -> list[str]:
    return [sent.event_id for sent in target.delivered]


def test_a_pass_delivers_the_conversations_events_oldest_first_whichever_task_runs_it(
    ordered, receive, target, ledger
):
    keys = conversation(receive, 5)

    outcome = ordered().replay(keys[2], lock=CONVERSATION_ID)

    assert outcome is ReplayOutcome.REPLAYED
    assert sent_ids(target) == [k.event_id for k in keys]
    assert all(ledger.get(k).status is Status.REPLAYED for k in keys)


def test_the_tasks_of_items_a_pass_settled_end_without_a_ledger_request_or_a_send(
    ordered, receive, target, ledger, monkeypatch
):
    keys = conversation(receive, 3)
    replayer = ordered()
    replayer.replay(keys[0], lock=CONVERSATION_ID)

    def no_ledger(*args, **kwargs):
        raise AssertionError("the ledger was asked")

    for name in ("claim", "get", "by_conversation"):
        monkeypatch.setattr(ledger, name, no_ledger)
    assert [replayer.replay(k, lock=CONVERSATION_ID) for k in keys[1:]] == [
        ReplayOutcome.REPLAYED,
        ReplayOutcome.REPLAYED,
    ]
    assert len(target.calls) == 3


class SpyLocks(ConversationLocks):
    """The conftest's locks, telling when a caller asks and what each one got."""

    def __init__(self, client, *, ttl_seconds: float) -> None:
        super().__init__(client, ttl_seconds=ttl_seconds)
        self.asked: list[threading.Event] = []
        self.got: list[Held] = []

    @contextlib.contextmanager
    def hold(self, name: str, *, wait: float = 0.0) -> Iterator[Held]:
        for asked in self.asked:
            asked.set()
        with super().hold(name, wait=wait) as held:
            self.got.append(held)
            yield held


def test_a_task_that_waits_out_its_conversations_pass_ends_with_the_outcome_it_recorded(
    ordered, receive, target, ledger, cache, monkeypatch
):
    first, second = conversation(receive, 2)
    locks = SpyLocks(cache, ttl_seconds=LEASE_SECONDS)
    replayer = ordered(locks=locks, lock_wait_seconds=10.0)
    in_pass, second_asked = threading.Event(), threading.Event()
    send = target.redeliver

    def slow_send(*args, **kwargs):
        # The pass is busy at the target when the second task asks for the lock.
        in_pass.set()
        assert second_asked.wait(10)
        time.sleep(0.2)
        return send(*args, **kwargs)

    monkeypatch.setattr(target, "redeliver", slow_send)
    running = threading.Thread(
        target=replayer.replay, args=(first,), kwargs={"lock": CONVERSATION_ID}
    )
    running.start()
    assert in_pass.wait(10)
    locks.asked.append(second_asked)

    def pass_only(name):
        original = getattr(ledger, name)

        def ask(*args, **kwargs):
            assert threading.current_thread() is running, "the waiting task asked the ledger"
            return original(*args, **kwargs)

        return ask

    for name in ("claim", "get", "by_conversation"):
        monkeypatch.setattr(ledger, name, pass_only(name))
    outcome = replayer.replay(second, lock=CONVERSATION_ID)
    running.join(10)

    assert outcome is ReplayOutcome.REPLAYED
    assert locks.got[-1].waited  # it waited for the lock instead of going back to the queue
    assert sent_ids(target) == [first.event_id, second.event_id]


def test_a_task_whose_conversation_stays_busy_goes_back_to_the_queue_after_its_wait(
    ordered, receive, target, ledger, locks
):
    key = receive()

    with locks.hold(CONVERSATION_ID) as held, pytest.raises(Wait, match="busy"):
        assert held
        ordered(lock_wait_seconds=0.2).replay(key, lock=CONVERSATION_ID)

    assert (ledger.get(key).status, target.calls) == (Status.RECEIVED, [])


def test_an_older_event_waiting_for_its_retry_holds_back_the_newer_ones(
    ordered, receive, target, ledger, enqueuer
):
    oldest, middle, newest = conversation(receive, 3)
    target.fail_with(unavailable())

    with pytest.raises(Wait, match=oldest.event_id):
        ordered().replay(newest, lock=CONVERSATION_ID)

    assert target.delivered == []
    assert ledger.get(oldest).status is Status.RETRY_SCHEDULED
    assert ledger.get(middle).status is Status.RECEIVED
    assert ledger.get(newest).status is Status.RECEIVED
    # The older event's retry is handed to a task of its own, at its countdown.
    assert enqueuer.keys == [oldest]
    assert enqueuer.countdowns[0] > 0


def test_when_the_held_event_succeeds_its_pass_delivers_the_rest_in_order(
    ordered, receive, target, ledger, enqueuer, clock
):
    oldest, middle, newest = conversation(receive, 3)
    target.fail_with(unavailable())
    replayer = ordered()
    with pytest.raises(Wait):
        replayer.replay(newest, lock=CONVERSATION_ID)

    clock.advance(enqueuer.countdowns[0] + 1)
    assert replayer.replay(oldest, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED

    assert sent_ids(target) == [oldest.event_id, middle.event_id, newest.event_id]
    assert replayer.replay(newest, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED
    assert len(target.calls) == 4


def test_a_newer_task_waits_about_until_the_held_event_is_due(
    ordered, receive, target, ledger, enqueuer
):
    oldest, newest = conversation(receive, 2)
    target.fail_with(unavailable())
    replayer = ordered()
    with pytest.raises(AttemptFailed) as failed:
        replayer.replay(oldest, lock=CONVERSATION_ID)
    failed.value.schedule(60.0)  # as the task's retry does, with its countdown
    due = ledger.get(oldest).next_attempt_at
    assert due is not None

    with pytest.raises(Wait) as waited:
        replayer.replay(newest, lock=CONVERSATION_ID)

    wait = waited.value.retry_after
    assert wait is not None
    assert due - ledger.clock.now() <= wait <= due - ledger.clock.now() + 2.0


def test_its_own_failure_is_the_tasks_retry_and_the_newer_events_stay_received(
    ordered, receive, target, ledger
):
    oldest, newest = conversation(receive, 2)
    target.fail_with(unavailable())

    with pytest.raises(AttemptFailed):
        ordered().replay(oldest, lock=CONVERSATION_ID)

    assert ledger.get(oldest).status is Status.IN_PROGRESS  # the task's retry schedules it
    assert ledger.get(newest).status is Status.RECEIVED
    assert target.delivered == []


def test_after_the_hold_the_newer_events_go_and_their_history_says_order_was_given_up(
    ordered, receive, target, ledger, enqueuer, clock
):
    oldest, middle, newest = conversation(receive, 3)
    target.fail_with(unavailable())
    replayer = ordered()
    with pytest.raises(Wait):
        replayer.replay(newest, lock=CONVERSATION_ID)
    # The held event keeps failing; its retries are far apart.
    clock.advance(HOLD_SECONDS + 1)
    ledger_item = ledger.get(oldest)
    assert ledger_item.status is Status.RETRY_SCHEDULED
    target.fail_with(unavailable())

    assert replayer.replay(newest, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED

    assert middle.event_id in sent_ids(target) and newest.event_id in sent_ids(target)
    assert sent_ids(target).index(middle.event_id) < sent_ids(target).index(newest.event_id)
    for key in (middle, newest):
        note = ledger.get(key).history[-1].get("note", "")
        assert f"out of order: the older event {oldest.event_id}" in note
    assert ledger.get(oldest).status in (Status.RETRY_SCHEDULED, Status.IN_PROGRESS)


def test_a_failed_older_event_does_not_hold_the_newer_ones(ordered, receive, target, ledger):
    oldest, newest = conversation(receive, 2)
    target.fail_with(TargetMissing("the queue is gone", target_arn=TARGET_ARN, code="Gone"))

    assert ordered().replay(newest, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED

    assert ledger.get(oldest).status is Status.FAILED
    assert sent_ids(target) == [newest.event_id]


def test_a_pass_serves_only_its_own_target(ordered, receive, target, ledger):
    mine = receive(age=20)
    other = receive(age=30, target_arn=OTHER_TARGET)

    ordered().replay(mine, lock=CONVERSATION_ID)

    assert sent_ids(target) == [mine.event_id]
    assert ledger.get(other).status is Status.RECEIVED


def test_tracking_is_told_once_when_the_conversation_comes_to_rest(ordered, receive, news, target):
    keys = conversation(receive, 4)
    replayer = ordered()

    for key in keys:
        replayer.replay(key, lock=CONVERSATION_ID)

    assert news.marks == [CONVERSATION_ID]


def test_tracking_is_not_told_while_another_target_still_has_work(ordered, receive, news, target):
    mine = receive(age=20)
    receive(age=30, target_arn=OTHER_TARGET)

    ordered().replay(mine, lock=CONVERSATION_ID)

    assert news.marks == []


def test_with_order_none_a_task_replays_its_own_event_only(ordered, receive, target, news):
    _, newest = conversation(receive, 2)

    assert ordered(in_order=False).replay(newest, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED

    assert sent_ids(target) == [newest.event_id]
    assert news.marks == [CONVERSATION_ID]


def test_events_without_a_conversation_are_replayed_alone(ordered, receive, target):
    first = receive(conversation_id=None, age=20)
    receive(conversation_id=None, age=30)

    lock = f"event:{first.event_id}|{first.target_arn}"
    assert ordered().replay(first, lock=lock) is ReplayOutcome.REPLAYED
    assert sent_ids(target) == [first.event_id]


def test_a_pass_verifies_its_conversation_once(ordered, receive, target, cache, monkeypatch):
    keys = conversation(receive, 4)
    reads = []
    real_get = cache.get

    def get(name):
        reads.append(name)
        return real_get(name)

    monkeypatch.setattr(cache, "get", get)

    ordered().replay(keys[0], lock=CONVERSATION_ID)

    assert len(target.delivered) == 4
    assert len([r for r in reads if "dlq:conv:" in str(r)]) == 1


def test_a_pass_that_must_wait_for_its_verification_claims_nothing(
    ordered, receive, target, ledger, directory, monkeypatch
):
    keys = conversation(receive, 3)

    def pending(conversation_id, **kwargs):
        raise BudgetWait("a batch verifies this conversation in a moment", retry_after=1.0)

    monkeypatch.setattr(directory, "lookup", pending)

    with pytest.raises(Wait, match="a batch verifies"):
        ordered().replay(keys[1], lock=CONVERSATION_ID)

    assert target.calls == []
    assert all(ledger.get(k).status is Status.RECEIVED for k in keys)
    assert all(ledger.get(k).attempts == 0 for k in keys)


def test_a_conversation_gone_from_genesys_fails_each_event_of_the_pass(
    ordered, receive, target, ledger, genesys
):
    keys = conversation(receive, 2)
    del genesys.conversations[CONVERSATION_ID]

    ordered().replay(keys[0], lock=CONVERSATION_ID)

    assert target.calls == []
    assert [ledger.get(k).status for k in keys] == [Status.FAILED, Status.FAILED]
