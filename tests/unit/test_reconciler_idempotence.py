"""`Reconciler`: passes that follow each other enqueue each pending item once.

Two beats (a deployment briefly running two) each tick every minute; ticks that waited
behind a backlog run back to back. Each pass requeues an item only if no pass did for the
item's current state within the grace period; the item's state changing, or the grace
running out, makes it due again. (One pass at a time: tests/unit/test_reconciler.py.)
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from helpers import eventually

from dlq.ledger import Status
from dlq.reconcile import REQUEUED_PREFIX

from .fakes import LEASE_SECONDS, settle

GRACE = 120.0


def test_two_beats_passes_enqueue_each_pending_item_once(
    make_reconciler, receive, ledger, clock, enqueuer
):
    received = receive()
    overdue = receive()
    settle(ledger, overdue, Status.RETRY_SCHEDULED, error="503", next_attempt_at=clock.now())
    lapsed = receive()
    ledger.claim(lapsed, lease_seconds=LEASE_SECONDS)
    clock.advance(GRACE + LEASE_SECONDS + 1)
    first_beat, second_beat = make_reconciler(), make_reconciler()

    first = first_beat.run()
    second = second_beat.run()

    assert (first["received"], first["retry_overdue"], first["lease_lapsed"]) == (1, 1, 1)
    assert second == Counter(already_requeued=3)
    assert sorted(enqueuer.keys, key=str) == sorted([received, overdue, lapsed], key=str)


def test_concurrent_passes_enqueue_each_pending_item_once(
    make_reconciler, receive, clock, enqueuer
):
    keys = [receive() for _ in range(20)]
    clock.advance(GRACE + 1)
    reports: list[Counter[str]] = []
    beats = [make_reconciler() for _ in range(4)]
    threads = [threading.Thread(target=lambda r=r: reports.append(r.run())) for r in beats]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(enqueuer.keys, key=str) == sorted(keys, key=str)
    assert sum(report["received"] for report in reports) == len(keys)


def test_an_item_whose_state_changed_since_its_requeue_is_requeued_again(
    make_reconciler, receive, ledger, clock, enqueuer
):
    key = receive()
    clock.advance(GRACE + 1)
    make_reconciler().run()
    ledger.claim(key, lease_seconds=LEASE_SECONDS)  # taken, then its worker died
    clock.advance(LEASE_SECONDS + 1)

    assert make_reconciler().run() == Counter(lease_lapsed=1)
    assert enqueuer.keys == [key, key]


def test_an_item_is_requeued_again_once_the_grace_after_its_requeue_ran_out(
    make_reconciler, receive, clock, enqueuer, cache
):
    key = receive()
    clock.advance(2)
    reconciler = make_reconciler(grace_seconds=0.3)
    reconciler.run()
    assert reconciler.run() == Counter(already_requeued=1)

    eventually(lambda: not cache.keys(REQUEUED_PREFIX + "*"), timeout=10, what="marker gone")

    assert reconciler.run() == Counter(received=1)
    assert enqueuer.keys == [key, key]


class _BrokerDown(Exception):
    pass


def test_a_requeue_the_broker_refused_leaves_no_marker(
    make_reconciler, receive, clock, enqueuer, monkeypatch
):
    key = receive()
    clock.advance(GRACE + 1)
    recorded = enqueuer.enqueue_replay

    def refuse(*args: object, **kwargs: object) -> None:
        raise _BrokerDown

    monkeypatch.setattr(enqueuer, "enqueue_replay", refuse)
    with pytest.raises(_BrokerDown):
        make_reconciler().run()
    monkeypatch.setattr(enqueuer, "enqueue_replay", recorded)

    assert make_reconciler().run() == Counter(received=1)
    assert enqueuer.keys == [key]
