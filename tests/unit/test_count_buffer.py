"""The counts a long-running process sums before writing them (`dlq.metrics.buffer`): the
status tally's moves and the outcome counters, on fakeredis with a fake clock. No test
waits for the flusher's interval: each flushes, or closes, explicitly."""

from __future__ import annotations

import json
import logging

import fakeredis
import pytest

from dlq.clock import FakeClock
from dlq.ledger import MemoryLedger, Status
from dlq.metrics.buffer import WARN_EVERY_SECONDS, CountBuffer, DirectCounts, Expiry
from dlq.metrics.counters import BUCKET_SECONDS, OutcomeCounters, bucket_key, read_counts
from dlq.metrics.tally import TALLY_PREFIX, StatusTally
from ingest.frontdoor import FrontDoor
from ingest.lambda_handler import handler

from .fakes import TARGET_ARN, RecordingEnqueuer, fixture

TABLE = "ledger-t"
KEY = TALLY_PREFIX + TABLE


@pytest.fixture()
def buffer(cache: fakeredis.FakeRedis, clock: FakeClock) -> CountBuffer:
    return CountBuffer(cache, clock=clock)


@pytest.fixture()
def tally(cache: fakeredis.FakeRedis, clock: FakeClock, buffer: CountBuffer) -> StatusTally:
    tally = StatusTally(cache, TABLE, clock=clock, counts=buffer)
    tally.recount(lambda status: 0)  # an empty table: every count 0
    return tally


@pytest.fixture()
def counters(cache: fakeredis.FakeRedis, clock: FakeClock, buffer: CountBuffer) -> OutcomeCounters:
    # At the start of a minute, so that every count of a test lands in one bucket.
    clock.advance(BUCKET_SECONDS - clock.now() % BUCKET_SECONDS)
    return OutcomeCounters(cache, TABLE, clock=clock, ttl_seconds=600, counts=buffer)


def by_status(tally: StatusTally) -> dict[Status, int]:
    counts = tally.counts()
    assert counts is not None
    return {s: n for s, n in counts.by_status.items() if n}


def ingested(counters: OutcomeCounters, n: int = 1, *, target: str = TARGET_ARN) -> None:
    for _ in range(n):
        counters.ingested("accepted", target_arn=target, dlq_error_code="THROTTLING")


# --- the status tally's moves -------------------------------------------------------------


def test_moves_wait_in_the_buffer_until_a_flush_writes_them(tally, buffer):
    for _ in range(5):
        tally.moved(None, Status.RECEIVED)
    tally.moved(Status.RECEIVED, Status.IN_PROGRESS)

    assert by_status(tally) == {}
    assert buffer.flush()
    assert by_status(tally) == {Status.RECEIVED: 4}


def test_a_flush_sums_the_moves_into_one_increment_a_field(tally, buffer):
    for _ in range(30):
        tally.moved(None, Status.RECEIVED)
    for _ in range(10):
        tally.moved(Status.RECEIVED, Status.IN_PROGRESS)
        tally.moved(Status.IN_PROGRESS, Status.FAILED)

    assert buffer.pending() == {(KEY, "received"): 20, (KEY, "failed"): 10}


def test_moves_that_cancel_out_before_a_flush_send_nothing(tally, buffer, cache):
    tally.moved(None, Status.RECEIVED)  # the ingest
    tally.moved(Status.RECEIVED, Status.IN_PROGRESS)  # the claim, in the same process
    pipelines: list[object] = []
    cache.pipeline = lambda *a, **k: pipelines.append(a)  # type: ignore[method-assign]

    assert buffer.pending() == {}
    assert buffer.flush()
    assert pipelines == []


def test_a_turn_of_the_flusher_sends_a_decrement_one_turn_after_it_was_counted(tally, buffer):
    tally.moved(None, Status.RECEIVED)  # the ingest (another process's, flushed already)
    buffer.flush()
    tally.moved(Status.RECEIVED, Status.IN_PROGRESS)  # a worker's claim
    tally.moved(Status.IN_PROGRESS, Status.FAILED)

    buffer.tick()
    assert by_status(tally) == {Status.RECEIVED: 1, Status.FAILED: 1}
    assert buffer.pending() == {(KEY, "received"): -1}

    buffer.tick()
    assert by_status(tally) == {Status.FAILED: 1}
    assert buffer.pending() == {}


def test_a_field_whose_moves_sum_to_an_increment_is_sent_at_once_by_a_turn(tally, buffer):
    for _ in range(3):
        tally.moved(None, Status.RECEIVED)
    tally.moved(Status.RECEIVED, Status.RESOLVED)

    buffer.tick()

    assert by_status(tally) == {Status.RECEIVED: 2, Status.RESOLVED: 1}


def test_a_flush_sends_the_decrements_a_turn_held(tally, buffer):
    tally.moved(None, Status.RECEIVED)
    buffer.flush()
    tally.moved(Status.RECEIVED, Status.RESOLVED)
    buffer.tick()

    buffer.flush()  # as the process stops

    assert by_status(tally) == {Status.RESOLVED: 1}


def test_a_buffered_tally_still_counts_a_move_between_uncounted_statuses_as_nothing(tally, buffer):
    tally.moved(None, Status.REJECTED)
    tally.moved(Status.REPLAYED, Status.REPLAYED)

    assert buffer.pending() == {}


# --- the outcome counters ----------------------------------------------------------------


def test_summed_counts_that_create_a_field_set_the_bucket_s_expiry(counters, buffer, cache, clock):
    minute = bucket_key(TABLE, int(clock.now()))
    ingested(counters, 5)
    counters.ingested("rejected", target_arn=None, dlq_error_code=None)

    assert cache.exists(minute) == 0
    buffer.flush()

    assert 0 < cache.ttl(minute) <= 600 + BUCKET_SECONDS
    assert read_counts(cache, TABLE, since=clock.now(), until=clock.now()).by_outcome == {
        "ingested": 5,
        "rejected": 1,
    }


def test_a_flush_that_creates_no_field_sends_no_expire(counters, buffer, cache, clock):
    minute = bucket_key(TABLE, int(clock.now()))
    ingested(counters, 2)
    buffer.flush()
    cache.persist(minute)  # so that an EXPIRE sent later would show

    ingested(counters, 3)
    buffer.flush()

    assert cache.ttl(minute) == -1
    assert read_counts(cache, TABLE, since=clock.now(), until=clock.now()).by_outcome == {
        "ingested": 5
    }


def test_a_bucket_a_redis_restart_emptied_gets_its_expiry_from_the_next_flush(
    counters, buffer, cache, clock
):
    minute = bucket_key(TABLE, int(clock.now()))
    ingested(counters, 2)
    buffer.flush()
    cache.delete(minute)  # a Redis restart mid-minute

    ingested(counters, 3)
    buffer.flush()

    assert 0 < cache.ttl(minute) <= 600 + BUCKET_SECONDS
    assert cache.hgetall(minute) == {b"ingested|sqs:crm-sync|none|THROTTLING": b"3"}


def test_a_count_lands_in_the_minute_it_happened_whenever_it_is_flushed(
    counters, buffer, cache, clock
):
    counted_in = int(clock.now())
    ingested(counters)
    clock.advance(BUCKET_SECONDS)

    buffer.flush()

    assert cache.exists(bucket_key(TABLE, counted_in)) == 1
    assert cache.exists(bucket_key(TABLE, int(clock.now()))) == 0


def test_the_tally_and_the_counters_of_a_process_share_one_flush(tally, counters, buffer, cache):
    tally.moved(None, Status.RECEIVED)
    ingested(counters)
    pipelines = 0
    pipeline = cache.pipeline

    def counted(*args, **kwargs):
        nonlocal pipelines
        pipelines += 1
        return pipeline(*args, **kwargs)

    cache.pipeline = counted  # type: ignore[method-assign]
    buffer.flush()

    # the HINCRBYs, then the EXPIRE of the bucket they created a field in
    assert pipelines == 2
    assert by_status(tally) == {Status.RECEIVED: 1}


# --- when Redis refuses -----------------------------------------------------------------


def test_a_flush_redis_refuses_keeps_its_counts_for_the_next_and_never_raises(
    fake_server, cache, clock, caplog
):
    buffer = CountBuffer(fakeredis.FakeRedis(server=fake_server), clock=clock)
    tally = StatusTally(cache, TABLE, clock=clock, counts=buffer)
    tally.recount(lambda status: 0)
    fake_server.connected = False
    for _ in range(3):
        tally.moved(None, Status.RECEIVED)

    with caplog.at_level(logging.WARNING, logger="dlq.metrics.buffer"):
        assert not buffer.flush()
    tally.moved(Status.RECEIVED, Status.RESOLVED)
    fake_server.connected = True
    assert buffer.flush()

    assert by_status(tally) == {Status.RECEIVED: 2, Status.RESOLVED: 1}
    assert "the counts of 1 fields to Redis" in caplog.text
    assert "1 kept for the next flush" in caplog.text


def test_what_refused_flushes_keep_is_bounded(fake_server, clock, caplog):
    buffer = CountBuffer(fakeredis.FakeRedis(server=fake_server), clock=clock, max_fields=2)
    buffer.add("k", {"a": 1})
    fake_server.connected = False
    buffer.flush()  # a: kept
    buffer.add("k", {"a": 1})
    buffer.add("k", {"b": 1})
    buffer.add("k", {"c": 1})

    with caplog.at_level(logging.WARNING, logger="dlq.metrics.buffer"):
        clock.advance(WARN_EVERY_SECONDS)
        buffer.flush()

    assert buffer.pending() == {("k", "a"): 2, ("k", "b"): 1}
    assert "2 kept for the next flush, 1 dropped (over 2 fields waiting)" in caplog.text


def test_refused_flushes_are_logged_once_a_minute(fake_server, clock, caplog):
    buffer = CountBuffer(fakeredis.FakeRedis(server=fake_server), clock=clock)
    fake_server.connected = False

    with caplog.at_level(logging.WARNING, logger="dlq.metrics.buffer"):
        for _ in range(3):
            buffer.add("k", {"a": 1})
            buffer.flush()
        clock.advance(WARN_EVERY_SECONDS)
        buffer.add("k", {"a": 1})
        buffer.flush()

    assert len(caplog.records) == 2


def test_a_count_redis_answers_with_an_error_is_dropped_and_the_others_written(
    cache, clock, caplog
):
    buffer = CountBuffer(cache, clock=clock)
    cache.set("not-a-hash", "x")
    buffer.add("not-a-hash", {"a": 1})
    buffer.add("a-hash", {"a": 2})

    with caplog.at_level(logging.WARNING, logger="dlq.metrics.buffer"):
        assert not buffer.flush()

    assert cache.hgetall("a-hash") == {b"a": b"2"}
    assert buffer.pending() == {}
    assert "dropped the counts of 1 fields Redis refused" in caplog.text


# --- written at once (the short-lived commands) -----------------------------------------


def test_a_direct_count_sends_an_expire_only_when_it_creates_a_field(cache, clock):
    direct = DirectCounts(cache, consequence="-", clock=clock)
    direct.add("k", {"a": 1, "b": -1, "c": 0}, expiry=Expiry(60))
    assert 0 < cache.ttl("k") <= 60
    cache.persist("k")

    direct.add("k", {"a": 2}, expiry=Expiry(60))  # creates no field
    assert cache.ttl("k") == -1
    direct.add("k", {"d": 1}, expiry=Expiry(60))  # creates one
    assert 0 < cache.ttl("k") <= 60
    direct.add("k", {"a": 0})

    assert cache.hgetall("k") == {b"a": b"3", b"b": b"-1", b"d": b"1"}


def test_direct_counts_redis_refuses_are_lost_logged_once_a_minute_never_raised(
    fake_server, clock, caplog
):
    direct = DirectCounts(
        fakeredis.FakeRedis(server=fake_server), consequence="status undercounts", clock=clock
    )
    fake_server.connected = False

    with caplog.at_level(logging.WARNING, logger="dlq.metrics.buffer"):
        for _ in range(3):
            direct.add("k", {"a": 1})
        clock.advance(WARN_EVERY_SECONDS)
        direct.add("k", {"a": 1, "b": 1})
    fake_server.connected = True

    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("could not write 1 counts to k in Redis (")
    assert messages[1].startswith("could not write 2 counts to k in Redis (")
    assert all(m.endswith("): status undercounts") for m in messages)
    # What was refused is not kept for later.
    assert fakeredis.FakeRedis(server=fake_server).hgetall("k") == {}


# --- flush points -----------------------------------------------------------------------


def test_closing_flushes_what_waits_and_a_later_count_is_written_at_once(cache, clock):
    buffer = CountBuffer(cache, clock=clock).start()
    buffer.add("k", {"a": 3})

    buffer.close()
    assert cache.hget("k", "a") == b"3"

    buffer.add("k", {"a": 1})  # a task that ends after the worker's shutdown signal
    assert cache.hget("k", "a") == b"4"


def test_the_lambda_handler_flushes_its_batch_s_counts_before_it_returns(cache, clock):
    buffer = CountBuffer(cache, clock=clock)
    tally = StatusTally(cache, TABLE, clock=clock, counts=buffer)
    tally.recount(lambda status: 0)
    ledger = MemoryLedger(clock=clock, moves=tally)
    door = FrontDoor(
        ledger=ledger,
        enqueuer=RecordingEnqueuer(),
        metrics=OutcomeCounters(cache, TABLE, clock=clock, counts=buffer),
        counts=buffer,
    )
    event = json.loads(json.dumps(fixture("dlq-lambda-sqs-event.json")))

    answer = handler(event, None, front_door=door)

    assert answer == {"batchItemFailures": []}
    assert buffer.pending() == {}
    counted = read_counts(cache, TABLE, since=clock.now(), until=clock.now()).by_outcome
    received = ledger.count_by_status(Status.RECEIVED)
    assert sum(counted.values()) == len(event["Records"])
    assert by_status(tally).get(Status.RECEIVED, 0) == received
