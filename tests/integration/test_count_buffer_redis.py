"""The summed counts of a long-running process (`dlq.metrics.buffer`) on a real
redis-server: what a flush costs in commands (INFO commandstats), whatever the moves."""

from __future__ import annotations

import threading

import redis

from dlq.clock import FakeClock
from dlq.ledger import Status
from dlq.metrics.buffer import CountBuffer
from dlq.metrics.counters import BUCKET_SECONDS, OutcomeCounters, read_counts
from dlq.metrics.tally import StatusTally

TABLE = "ledger-t"
TARGETS = ("arn:aws:sqs:us-east-1:111122223333:crm", "arn:aws:sqs:us-east-1:111122223333:erp")
THREADS = 16
EVENTS = 200  # a thread's


def calls(client: redis.Redis) -> dict[str, int]:
    """Commands the server ran since its stats were reset, the test's own reads left out."""
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(values["calls"])
        for name, values in stats.items()
        if name not in ("cmdstat_info", "cmdstat_config|resetstat")
    }


def replay_from_threads(tally: StatusTally, counters: OutcomeCounters) -> None:
    """What a poller and a worker sharing one process tell the tally and the counters:
    each thread ingests EVENTS events, claims three in four, fails the odd ones (half)
    and replays the rest."""

    def work(n: int) -> None:
        target = TARGETS[n % 2]
        for i in range(EVENTS):
            tally.moved(None, Status.RECEIVED)
            counters.ingested("accepted", target_arn=target, dlq_error_code="THROTTLING")
            if i % 4:
                tally.moved(Status.RECEIVED, Status.IN_PROGRESS)
                tally.moved(Status.IN_PROGRESS, Status.FAILED if i % 2 else Status.REPLAYED)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_moves_from_many_threads_cost_one_hincrby_a_field_per_flush_and_end_exact(
    redis_client: redis.Redis,
) -> None:
    clock = FakeClock()
    clock.advance(BUCKET_SECONDS - clock.now() % BUCKET_SECONDS)  # one minute's bucket
    buffer = CountBuffer(redis_client, clock=clock)
    tally = StatusTally(redis_client, TABLE, clock=clock, counts=buffer)
    counters = OutcomeCounters(redis_client, TABLE, clock=clock, counts=buffer)
    tally.recount(lambda status: 0)
    redis_client.config_resetstat()

    replay_from_threads(tally, counters)
    assert calls(redis_client) == {}  # nothing sent before the flush
    assert buffer.flush()

    sent = calls(redis_client)
    # received, failed, and the two targets' ingested fields; the bucket's one EXPIRE
    assert sent == {"hincrby": 4, "expire": 1}
    assert_exact(tally, redis_client, clock)

    redis_client.config_resetstat()
    replay_from_threads(tally, counters)
    buffer.flush()

    assert calls(redis_client) == {"hincrby": 4}  # the fields exist: no EXPIRE


def test_counts_end_exact_when_the_flusher_runs_during_the_moves(
    redis_client: redis.Redis,
) -> None:
    clock = FakeClock()
    clock.advance(BUCKET_SECONDS - clock.now() % BUCKET_SECONDS)
    buffer = CountBuffer(redis_client, clock=clock, interval=0.001).start()
    tally = StatusTally(redis_client, TABLE, clock=clock, counts=buffer)
    counters = OutcomeCounters(redis_client, TABLE, clock=clock, counts=buffer)
    tally.recount(lambda status: 0)

    replay_from_threads(tally, counters)
    buffer.close()  # as the process stops

    assert_exact(tally, redis_client, clock)
    assert redis_client.ttl(next(iter(redis_client.scan_iter("dlq:stats:*")))) > 0


def assert_exact(tally: StatusTally, client: redis.Redis, clock: FakeClock) -> None:
    """The counts are what `replay_from_threads` moved, once each."""
    counts = tally.counts()
    assert counts is not None
    assert counts.by_status[Status.RECEIVED] == THREADS * EVENTS // 4
    assert counts.by_status[Status.FAILED] == THREADS * EVENTS // 2
    outcomes = read_counts(client, TABLE, since=clock.now(), until=clock.now())
    assert outcomes.by_outcome == {"ingested": THREADS * EVENTS}
