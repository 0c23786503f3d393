"""`Reconciler`: what it re-enqueues from the ledger, and what it leaves alone."""

from __future__ import annotations

from collections import Counter

import pytest

from dlq.ledger import Status
from dlq.reconcile import CATCH_UP_MARK, CATCH_UP_OVERLAP_SECONDS
from dlq.tracking import PENDING_PREFIX

from .fakes import CONVERSATION_ID, DEBOUNCE_SECONDS, LEASE_SECONDS, settle

GRACE = 120.0
WINDOW = 3600.0


def test_received_items_older_than_the_grace_are_requeued_when_the_queue_is_empty(
    make_reconciler, receive, clock, enqueuer
):
    keys = [receive(), receive()]
    clock.advance(GRACE + 1)

    report = make_reconciler(queue_depth=0).run()

    assert report == Counter(received=2)
    assert sorted(enqueuer.keys, key=str) == sorted(keys, key=str)


def test_received_items_wait_their_turn_while_the_queue_has_a_backlog(
    make_reconciler, receive, clock, enqueuer
):
    receive()
    clock.advance(GRACE + 1)

    assert make_reconciler(queue_depth=3).run() == Counter()
    assert enqueuer.keys == []


def test_received_items_within_the_grace_are_left_to_their_task(
    make_reconciler, receive, clock, enqueuer
):
    receive()
    clock.advance(GRACE - 1)

    assert make_reconciler(queue_depth=0).run() == Counter()
    assert enqueuer.keys == []


def test_a_retry_overdue_by_the_grace_is_requeued(
    make_reconciler, receive, ledger, clock, enqueuer
):
    key = receive()
    settle(ledger, key, Status.RETRY_SCHEDULED, error="503", next_attempt_at=clock.now() + 10)
    clock.advance(10 + GRACE + 1)

    report = make_reconciler(queue_depth=5).run()  # a backlog does not hold back a lost retry

    assert report["retry_overdue"] == 1
    assert enqueuer.keys == [key]


def test_a_retry_not_yet_overdue_by_the_grace_is_left_to_its_countdown(
    make_reconciler, receive, ledger, clock, enqueuer
):
    key = receive()
    settle(ledger, key, Status.RETRY_SCHEDULED, error="503", next_attempt_at=clock.now() + 10)
    clock.advance(10 + GRACE - 1)

    assert make_reconciler().run()["retry_overdue"] == 0
    assert enqueuer.keys == []


def test_an_item_whose_lease_lapsed_is_requeued(make_reconciler, receive, ledger, clock, enqueuer):
    key = receive()
    ledger.claim(key, lease_seconds=LEASE_SECONDS)
    clock.advance(LEASE_SECONDS + 1)

    report = make_reconciler(queue_depth=5).run()

    assert report == Counter(lease_lapsed=1)
    assert enqueuer.keys == [key]


def test_an_item_under_a_live_lease_is_left_to_its_worker(
    make_reconciler, receive, ledger, clock, enqueuer
):
    key = receive()
    ledger.claim(key, lease_seconds=LEASE_SECONDS)
    clock.advance(LEASE_SECONDS - 1)

    assert make_reconciler().run() == Counter()
    assert enqueuer.keys == []


@pytest.mark.parametrize("status", [Status.REPLAYED, Status.FAILED, Status.EXHAUSTED])
def test_final_items_are_never_requeued(make_reconciler, receive, ledger, clock, enqueuer, status):
    settle(ledger, receive(), status)
    clock.advance(GRACE + LEASE_SECONDS + 1)

    make_reconciler().run()

    assert enqueuer.keys == []


# --- tracking catch-up ------------------------------------------------------------------


def test_a_conversation_with_untracked_outcomes_is_marked_for_tracking_once(
    make_reconciler, receive, ledger, clock, schedule, enqueuer
):
    settle(ledger, receive(), Status.REPLAYED)
    clock.advance(1)
    settle(ledger, receive(), Status.FAILED, error="the queue is gone")

    report = make_reconciler().run()

    assert report == Counter(tracking=1)
    assert schedule.runs == [(CONVERSATION_ID, DEBOUNCE_SECONDS)]
    assert enqueuer.keys == []


def test_a_conversation_tracked_up_to_its_newest_outcome_is_left_alone(
    make_reconciler, tracker, receive, ledger, clock, schedule
):
    settle(ledger, receive(), Status.REPLAYED)
    tracker.track(CONVERSATION_ID)

    assert make_reconciler().run() == Counter()
    assert schedule.runs == []


def test_an_outcome_newer_than_the_last_tracking_run_is_caught_up(
    make_reconciler, tracker, receive, ledger, clock, schedule
):
    settle(ledger, receive(), Status.REPLAYED)
    tracker.track(CONVERSATION_ID)
    clock.advance(1)
    settle(ledger, receive(), Status.REPLAYED)  # its news was lost

    assert make_reconciler().run() == Counter(tracking=1)
    assert schedule.runs == [(CONVERSATION_ID, DEBOUNCE_SECONDS)]


def test_a_retry_scheduled_is_an_outcome_to_catch_up(make_reconciler, receive, ledger, clock):
    settle(ledger, receive(), Status.RETRY_SCHEDULED, error="503", next_attempt_at=clock.now() + 60)

    assert make_reconciler().run()["tracking"] == 1


def test_a_conversation_with_a_tracking_run_pending_is_not_marked_again(
    make_reconciler, tracking_news, receive, ledger, schedule
):
    settle(ledger, receive(), Status.REPLAYED)
    tracking_news.mark(CONVERSATION_ID)

    assert make_reconciler().run() == Counter()
    assert len(schedule.runs) == 1


def test_outcomes_older_than_the_tracking_window_are_left_alone(
    make_reconciler, receive, ledger, clock, schedule
):
    settle(ledger, receive(), Status.REPLAYED)
    clock.advance(WINDOW + 1)

    assert make_reconciler(tracking_window_seconds=WINDOW).run() == Counter()
    assert schedule.runs == []


def items_read(monkeypatch, ledger) -> list[str]:
    """The event ids the catch-up's reads (`updated_after`) answer from now on."""
    read: list[str] = []
    by_status = ledger.by_status

    def spied(status, **kwargs):
        for item in by_status(status, **kwargs):
            if kwargs.get("updated_after"):
                read.append(item.event_id)
            yield item

    monkeypatch.setattr(ledger, "by_status", spied)
    return read


def test_a_pass_reads_only_the_outcomes_since_the_last_one(
    make_reconciler, tracker, receive, ledger, clock, monkeypatch
):
    for _ in range(3):
        settle(ledger, receive(), Status.REPLAYED)
    tracker.track(CONVERSATION_ID)
    clock.advance(CATCH_UP_OVERLAP_SECONDS + 1)
    reconciler = make_reconciler()
    reconciler.run()  # reads the three, marks them tracked through now
    clock.advance(60)
    read = items_read(monkeypatch, ledger)

    assert reconciler.run() == Counter()
    assert read == []  # the three are older than the mark: not read again

    newer = settle(ledger, receive(), Status.REPLAYED)
    assert reconciler.run() == Counter(tracking=1)
    assert read == [newer.event_id]


def test_an_untracked_outcome_holds_the_mark_until_tracking_covers_it(
    make_reconciler, tracker, receive, ledger, clock, cache, schedule
):
    settle(ledger, receive(), Status.REPLAYED)
    clock.advance(CATCH_UP_OVERLAP_SECONDS + 1)
    reconciler = make_reconciler()
    assert reconciler.run() == Counter(tracking=1)
    cache.delete(PENDING_PREFIX + CONVERSATION_ID)  # its run was lost with its mark
    clock.advance(CATCH_UP_OVERLAP_SECONDS * 20)

    assert reconciler.run() == Counter(tracking=1)  # read again: the mark held back

    tracker.track(CONVERSATION_ID)
    clock.advance(CATCH_UP_OVERLAP_SECONDS * 2)
    assert reconciler.run() == Counter()


def test_without_its_mark_the_catch_up_reads_the_whole_window(
    make_reconciler, tracker, receive, ledger, clock, cache, monkeypatch
):
    settle(ledger, receive(), Status.REPLAYED)
    tracker.track(CONVERSATION_ID)
    reconciler = make_reconciler()
    reconciler.run()
    clock.advance(600)
    cache.delete(CATCH_UP_MARK)  # Redis lost it
    read = items_read(monkeypatch, ledger)

    reconciler.run()

    assert len(read) == 1


# --- one pass at a time -----------------------------------------------------------------


def test_a_second_concurrent_pass_is_skipped(make_reconciler, receive, clock, enqueuer):
    receive()
    clock.advance(GRACE + 1)
    concurrent: list[Counter[str]] = []

    def depth_while_another_pass_starts() -> int:
        concurrent.append(make_reconciler().run())
        return 0

    report = make_reconciler(queue_depth=depth_while_another_pass_starts).run()

    assert concurrent == [Counter(skipped_pass=1)]
    assert report == Counter(received=1)
    assert len(enqueuer.keys) == 1


def test_a_pass_is_skipped_while_another_worker_holds_the_reconciler_lock(
    make_reconciler, receive, clock, enqueuer, peer_cache
):
    receive()
    clock.advance(GRACE + 1)
    other = peer_cache.lock("dlq:lock:reconciler", timeout=300, blocking=False)
    assert other.acquire(blocking=False)

    assert make_reconciler().run() == Counter(skipped_pass=1)
    assert enqueuer.keys == []


def test_the_reconciler_lock_is_released_after_a_pass(make_reconciler, receive, clock, enqueuer):
    receive()
    clock.advance(GRACE + 1)
    reconciler = make_reconciler()
    reconciler.run()

    # Not skipped: the pass runs, and finds the item's task already sent.
    assert reconciler.run() == Counter(already_requeued=1)
    assert len(enqueuer.keys) == 1
