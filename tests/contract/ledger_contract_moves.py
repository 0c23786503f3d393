"""The ledger contract, continued: every status change is told once (`StatusMoves`), and a
transition answers the item as the table holds it after the write.

Collected with `ledger_contract.py` by the same two modules (tests/unit/
test_ledger_contract_memory.py, tests/contract/test_ledger_contract_dynamodb.py). The
status counts kept in Redis (`dlq.metrics.tally`) are only as right as these moves.
"""

from __future__ import annotations

from collections import Counter

import pytest
from helpers import received_message

from dlq.ledger import ClaimRefused, LedgerStore, StaleClaim, Status

from .ledger_contract import LEASE, TARGET, current, item_in, key_of, receive

OPERATOR = "arn:aws:sts::111122223333:assumed-role/ops/alice"


def statuses(ledger: LedgerStore) -> Counter[Status]:
    return Counter(item.status for item in ledger.scan())


def test_the_moves_told_add_up_to_the_statuses_the_table_holds(ledger, clock, seen):
    kept = key_of(receive(ledger))  # stays received
    replayed = ledger.claim(key_of(receive(ledger)), lease_seconds=LEASE)
    ledger.finish(replayed, Status.REPLAYED, outcome="replayed")
    retried = ledger.claim(key_of(receive(ledger)), lease_seconds=LEASE)
    ledger.finish(
        retried, Status.RETRY_SCHEDULED, outcome="retry", error="503", next_attempt_at=clock.now()
    )
    again = ledger.claim(retried.key, lease_seconds=LEASE)  # retry_scheduled -> in_progress
    ledger.postpone(again, until=clock.now() + 60, reason="Genesys is down", code="GenesysDown")
    failed = item_in(ledger, Status.FAILED)
    ledger.redrive(failed, operator=OPERATOR)  # failed -> received
    ledger.resolve(current(ledger, failed), reason="entered by hand", operator=OPERATOR)
    item_in(ledger, Status.EXHAUSTED)
    item_in(ledger, Status.REJECTED)
    lapsed = ledger.claim(key_of(receive(ledger)), lease_seconds=LEASE)
    clock.advance(LEASE + 1)
    ledger.claim(lapsed.key, lease_seconds=LEASE)  # a lapsed lease taken over: no move
    ledger.count_duplicate(kept)
    ledger.forget(current(ledger, replayed.key))  # a final item's texts dropped: no move

    assert seen.net() == statuses(ledger)
    assert (Status.IN_PROGRESS, Status.IN_PROGRESS) not in seen.moves


def test_each_transition_tells_where_the_item_came_from(ledger, clock, seen):
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)
    ledger.finish(claimed, Status.FAILED, outcome="failed", error="403")
    ledger.redrive(key, operator=OPERATOR)
    claimed = ledger.claim(key, lease_seconds=LEASE)
    ledger.postpone(claimed, until=clock.now())
    ledger.claim(key, lease_seconds=LEASE)
    message = received_message("{not json", TARGET)
    ledger.put_rejected(message, "body is not JSON")

    assert seen.moves == [
        (None, Status.RECEIVED),
        (Status.RECEIVED, Status.IN_PROGRESS),
        (Status.IN_PROGRESS, Status.FAILED),
        (Status.FAILED, Status.RECEIVED),
        (Status.RECEIVED, Status.IN_PROGRESS),
        (Status.IN_PROGRESS, Status.RETRY_SCHEDULED),
        (Status.RETRY_SCHEDULED, Status.IN_PROGRESS),
        (None, Status.REJECTED),
    ]


def test_a_refused_or_repeated_write_tells_nothing(ledger, seen):
    event_id = receive(ledger)
    key = key_of(event_id)
    claimed = ledger.claim(key, lease_seconds=LEASE)
    ledger.finish(claimed, Status.REPLAYED, outcome="replayed")
    told = list(seen.moves)

    with pytest.raises(ClaimRefused):
        ledger.claim(key, lease_seconds=LEASE)
    with pytest.raises(StaleClaim):
        ledger.finish(claimed, Status.FAILED, outcome="failed")
    with pytest.raises(ClaimRefused):
        ledger.redrive(key)
    message = received_message("{not json", TARGET)
    assert ledger.put_rejected(message, "body is not JSON")
    told.append((None, Status.REJECTED))
    assert not ledger.put_rejected(message, "body is not JSON")  # the same message again

    assert seen.moves == told


def test_claim_answers_the_item_as_the_table_holds_it_after_the_claim(ledger, clock):
    key = key_of(receive(ledger))
    clock.advance(3)

    claimed = ledger.claim(key, lease_seconds=LEASE)

    assert claimed == current(ledger, key)
    assert claimed.attempts == 1


def test_finish_answers_the_item_as_the_table_holds_it_after_the_finish(ledger, clock):
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)
    clock.advance(2)

    first = ledger.finish(
        claimed,
        Status.RETRY_SCHEDULED,
        outcome="retry",
        error="503 from the target",
        error_code="HTTP503",
        next_attempt_at=clock.now() + 30,
    )
    assert first == current(ledger, key)

    clock.advance(30)
    claimed = ledger.claim(key, lease_seconds=LEASE)
    rejected = ledger.finish(
        claimed, Status.REJECTED, outcome="rejected", error="not a target of its rule"
    )
    assert rejected == current(ledger, key)
    assert rejected.next_attempt_at is None
