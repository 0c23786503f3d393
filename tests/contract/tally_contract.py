"""The status counts kept in Redis (`dlq.metrics.tally`): one contract, two Redis servers.

Held against fakeredis by tests/unit/test_status_tally.py and against a real
`redis-server` by tests/integration/test_status_tally_redis.py (the Lua that moves a count
runs in both), each providing the `tally_client` fixture. The table is a `Table` here: a
count per status that items move in, as the ledger's, so a test can move items while the
tally recounts it.
"""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from dlq.clock import FakeClock
from dlq.ledger import Status
from dlq.metrics.tally import COUNTED, RECOUNT_LEASE_PREFIX, StatusTally

TABLE = "ledger-t"
EVERY = 6 * 3600.0


class Table:
    """What the ledger holds, by status; moves told to `tally` as the stores tell them."""

    def __init__(self, tally: StatusTally, **held: int) -> None:
        self.tally = tally
        self.held: Counter[Status] = Counter({Status(k): v for k, v in held.items()})
        self.counted: list[Status] = []

    def move(self, old: Status | None, new: Status, *, told: bool = True) -> None:
        if old is not None:
            self.held[old] -= 1
        self.held[new] += 1
        if told:
            self.tally.moved(old, new)

    def count(self, status: Status) -> int:
        self.counted.append(status)
        return self.held[status]


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def tally(tally_client, clock) -> StatusTally:
    return StatusTally(tally_client, TABLE, clock=clock)


def counts_of(tally: StatusTally) -> dict[Status, int]:
    counts = tally.counts()
    assert counts is not None
    return {s: n for s, n in counts.by_status.items() if n}


def test_there_are_no_counts_before_the_first_recount_which_counts_each_item_once(tally):
    table = Table(tally, received=2)
    table.move(None, Status.RECEIVED)  # told before any recount (a flushed Redis, say)

    assert tally.counts() is None
    assert tally.due(every=EVERY)
    tally.recount(table.count)
    assert counts_of(tally) == {Status.RECEIVED: 3}


def test_a_recount_sets_every_counted_status_from_the_table(tally, clock):
    table = Table(tally, received=3, failed=2, replayed=40, resolved=1)

    counts = tally.recount(table.count)

    assert counts is not None
    # replayed, rejected and in_progress (the leases alone) are not counted
    assert sorted(table.counted) == sorted(COUNTED)
    assert counts_of(tally) == {Status.RECEIVED: 3, Status.FAILED: 2, Status.RESOLVED: 1}
    assert counts.recounted_at == clock.now()
    assert counts.drift == {}  # nothing to compare a first count with


def test_moves_after_a_recount_keep_every_count_right(tally):
    table = Table(tally, received=2)
    tally.recount(table.count)

    table.move(None, Status.RECEIVED)
    table.move(Status.RECEIVED, Status.IN_PROGRESS)  # in_progress is not counted
    table.move(Status.IN_PROGRESS, Status.RETRY_SCHEDULED)
    table.move(Status.RETRY_SCHEDULED, Status.IN_PROGRESS)
    table.move(Status.IN_PROGRESS, Status.EXHAUSTED)
    table.move(Status.RECEIVED, Status.IN_PROGRESS)
    table.move(Status.IN_PROGRESS, Status.REPLAYED)  # out of the counted statuses
    table.move(None, Status.REJECTED)  # never counted
    table.move(Status.EXHAUSTED, Status.RECEIVED)  # a redrive
    table.move(Status.RECEIVED, Status.RESOLVED)

    assert counts_of(tally) == {Status.RECEIVED: 1, Status.RESOLVED: 1}
    assert counts_of(tally) == {s: n for s, n in table.held.items() if n and s in COUNTED}


def test_moves_that_land_while_the_table_is_counted_stay_counted(tally):
    table = Table(tally, received=5, resolved=1)
    tally.recount(table.count)
    table.move(None, Status.RECEIVED)  # counted as it moves: 6

    def count_while_moving(status: Status) -> int:
        counted = table.count(status)
        if status is Status.RECEIVED:  # an operator resolves one after the table's read
            table.move(Status.RECEIVED, Status.RESOLVED)
        return counted

    tally.recount(count_while_moving)

    assert counts_of(tally) == {Status.RECEIVED: 5, Status.RESOLVED: 2}
    assert tally.counts().drift == {s: 0 for s in COUNTED}


def test_a_recount_sets_right_what_drifted_and_reports_by_how_much(tally, clock, caplog):
    table = Table(tally, failed=10, exhausted=4)
    tally.recount(table.count)
    table.move(Status.FAILED, Status.REPLAYED, told=False)  # expired by TTL, say: untold
    table.move(Status.FAILED, Status.REPLAYED, told=False)
    table.move(None, Status.RECEIVED, told=False)  # a process died before its count
    clock.advance(EVERY)

    assert tally.due(every=EVERY)
    with caplog.at_level(logging.WARNING, logger="dlq.metrics.tally"):
        counts = tally.recount(table.count)

    assert counts is not None
    assert counts_of(tally) == {Status.FAILED: 8, Status.EXHAUSTED: 4, Status.RECEIVED: 1}
    assert {s: d for s, d in counts.drift.items() if d} == {Status.FAILED: -2, Status.RECEIVED: 1}
    assert "drifted by {'received': 1, 'failed': -2}" in caplog.text
    assert not tally.due(every=EVERY)


def test_one_process_recounts_at_a_time(tally, tally_client):
    table = Table(tally, received=3)
    tally_client.set(RECOUNT_LEASE_PREFIX + TABLE, "another process")

    assert tally.recount(table.count) is None
    assert table.counted == []

    tally_client.delete(RECOUNT_LEASE_PREFIX + TABLE)
    assert tally.recount(table.count) is not None
    assert tally_client.get(RECOUNT_LEASE_PREFIX + TABLE) is None  # released at its end


def test_current_recounts_only_when_due(tally, clock):
    table = Table(tally, failed=1)

    tally.current(table.count, every=EVERY)
    tally.current(table.count, every=EVERY)
    assert len(table.counted) == len(COUNTED)

    clock.advance(EVERY)
    counts = tally.current(table.count, every=EVERY)
    assert len(table.counted) == 2 * len(COUNTED)
    assert counts is not None and counts.by_status[Status.FAILED] == 1


def test_the_counts_are_one_table_s_alone(tally_client, clock):
    mine = StatusTally(tally_client, TABLE, clock=clock)
    other = StatusTally(tally_client, "another-table", clock=clock)
    mine.recount(Table(mine, received=2).count)
    other.recount(Table(other, received=7).count)

    mine.moved(None, Status.RECEIVED)

    assert counts_of(mine) == {Status.RECEIVED: 3}
    assert counts_of(other) == {Status.RECEIVED: 7}


def test_a_count_below_zero_makes_a_recount_due_at_once(tally):
    table = Table(tally, received=1)
    tally.recount(table.count)
    table.move(None, Status.RECEIVED, told=False)  # a writer that moves no count
    table.move(Status.RECEIVED, Status.RESOLVED)
    table.move(Status.RECEIVED, Status.RESOLVED)

    assert counts_of(tally)[Status.RECEIVED] == -1
    counts = tally.current(table.count, every=EVERY)
    assert counts is not None and counts.by_status[Status.RECEIVED] == 0
    assert counts.drift[Status.RECEIVED] == 1
