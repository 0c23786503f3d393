"""The status counts kept in Redis (`dlq.metrics.tally`) on fakeredis: the contract
(tests/contract/tally_contract.py), and what the tally does with the ledger and without
Redis."""

from __future__ import annotations

import logging

import fakeredis
import pytest

# The contract's tests and fixtures, collected here against fakeredis.
from contract.tally_contract import *  # noqa: F403
from contract.tally_contract import TABLE
from helpers import genesys_event, parsed

from dlq.ledger import MemoryLedger, Status
from dlq.metrics.report import status_report
from dlq.metrics.tally import COUNTED, StatusTally

from .fakes import settle

TARGET = "arn:aws:sqs:us-east-1:111122223333:crm-events"


@pytest.fixture()
def tally_client(cache: fakeredis.FakeRedis) -> fakeredis.FakeRedis:
    return cache


def test_the_ledger_s_moves_keep_the_counts_equal_to_what_it_holds(cache, clock):
    tally = StatusTally(cache, TABLE, clock=clock)
    ledger = MemoryLedger(clock=clock, moves=tally)
    tally.recount(ledger.count_by_status)  # an empty table: every count 0
    keys = []
    for _ in range(6):
        event, message = parsed(genesys_event(), TARGET)
        ledger.put_received(event, message)
        keys.append(event.key)
    settle(ledger, keys[0], Status.REPLAYED)
    settle(ledger, keys[1], Status.FAILED, error="403")
    settle(ledger, keys[2], Status.EXHAUSTED, error="503")
    settle(ledger, keys[3], Status.RETRY_SCHEDULED, error="503", next_attempt_at=clock.now())
    ledger.claim(keys[4], lease_seconds=60)
    ledger.redrive(keys[2])
    failed = ledger.get(keys[1])
    assert failed is not None
    ledger.resolve(failed, reason="by hand", operator="ops")

    counts = tally.counts()
    assert counts is not None
    assert dict(counts.by_status) == {s: ledger.count_by_status(s) for s in COUNTED}
    assert ledger.count_by_status(Status.IN_PROGRESS) == 1  # counted in the table instead
    assert counts.by_status[Status.RECEIVED] == 2  # keys[5], and keys[2] redriven


def test_status_reads_the_counts_and_says_when_they_were_set_from_the_ledger(
    cache, ledger, clock, receive
):
    receive(), receive()
    queries: list[Status] = []
    count = ledger.count_by_status

    def counting(status: Status) -> int:
        queries.append(status)
        return count(status)

    ledger.count_by_status = counting  # type: ignore[method-assign]
    first = status_report(ledger, cache, TABLE, now=clock.now())
    second = status_report(ledger, cache, TABLE, now=clock.now())

    assert first["waiting"]["received"] == second["waiting"]["received"] == 2
    # The first report recounted; both counted in_progress (the leases), nothing else.
    assert sorted(queries) == sorted([*COUNTED, Status.IN_PROGRESS, Status.IN_PROGRESS])
    assert second["counted"] == {"recounted_at": first["counted"]["recounted_at"], "drift": {}}


def test_a_move_redis_refuses_is_logged_once_a_minute_and_never_raised(fake_server, caplog):
    tally = StatusTally(fakeredis.FakeRedis(server=fake_server), TABLE)
    fake_server.connected = False

    with caplog.at_level(logging.WARNING, logger="dlq.metrics.tally"):
        tally.moved(None, Status.RECEIVED)
        tally.moved(Status.RECEIVED, Status.IN_PROGRESS)

    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "the status counts drift until the next recount" in warnings[0]


def test_a_move_between_statuses_nobody_counts_sends_nothing(cache, clock):
    tally = StatusTally(cache, TABLE, clock=clock)
    tally.recount(lambda status: 0)
    sent: list[object] = []
    cache.execute_command = lambda *args, **kwargs: sent.append(args)  # type: ignore[method-assign]

    tally.moved(None, Status.REJECTED)
    tally.moved(Status.REPLAYED, Status.REPLAYED)

    assert sent == []
