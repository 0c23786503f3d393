"""The target breaker in Redis (dlq.holds.fleet): shared by every worker, one probe."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import redis

from dlq.clock import FakeClock
from dlq.holds.breaker import BreakerRule, BreakerState
from dlq.holds.fleet import FleetBreakers, breaker_key
from dlq.ledger import LedgerItem, Status
from dlq.replay.holds import BREAKER_REUSE_SECONDS, TargetHeld, TargetHolds

TARGET = "arn:aws:sqs:us-east-1:111122223333:crm"
RULE = BreakerRule(failures=3, window=60.0, cooldown=5.0, probe_seconds=30.0)


class Changes:
    """A metrics observer that keeps the hold changes it is told of."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def target_hold(self, target_arn: str, change: str) -> None:
        with self._lock:
            self.seen.append((target_arn, change))


@pytest.fixture()
def clients(redis_url: str) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    first, second = redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)
    yield first, second
    first.close()
    second.close()


def test_failures_told_by_two_workers_open_the_breaker_both_see(clients) -> None:
    one, two = FleetBreakers(clients[0], RULE), FleetBreakers(clients[1], RULE)
    one.failed(TARGET, now=100.0)
    two.failed(TARGET, now=101.0)
    assert one.admit(TARGET, now=101.5, caller="a").allowed
    one.failed(TARGET, now=102.0)
    held = two.admit(TARGET, now=103.0, caller="b")
    assert not held.allowed
    assert held.retry_after == pytest.approx(4.0)
    assert [t.target_arn for t in two.held()] == [TARGET]


def test_when_half_open_exactly_one_of_many_concurrent_callers_gets_the_probe(
    clients, redis_url
) -> None:
    FleetBreakers(clients[0], RULE).failed(TARGET, now=100.0)
    for moment in (101.0, 102.0):
        FleetBreakers(clients[0], RULE).failed(TARGET, now=moment)
    callers = 24
    start = threading.Barrier(callers)
    probes: list[str] = []
    lock = threading.Lock()

    def ask(n: int) -> None:
        client = redis.Redis.from_url(redis_url)
        breakers = FleetBreakers(client, RULE)
        start.wait()
        admission = breakers.admit(TARGET, now=110.0, caller=f"w{n}")
        client.close()
        if admission.allowed:
            with lock:
                probes.append(f"w{n}")

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(probes) == 1
    breaker = FleetBreakers(clients[1], RULE).read(TARGET)
    assert (breaker.state, breaker.probe) == (BreakerState.HALF_OPEN, probes[0])


def test_the_probes_success_closes_it_for_every_worker_and_each_change_is_told(clients) -> None:
    changes = Changes()
    one = FleetBreakers(clients[0], RULE, metrics=changes)  # type: ignore[arg-type]
    two = FleetBreakers(clients[1], RULE, metrics=changes)  # type: ignore[arg-type]
    for moment in (100.0, 101.0, 102.0):
        one.failed(TARGET, now=moment)
    assert one.admit(TARGET, now=108.0, caller="probe").probe
    two.succeeded(TARGET)
    assert one.admit(TARGET, now=108.1, caller="other").allowed
    assert list(one.held()) == []
    assert changes.seen == [
        (TARGET, "breaker_open"),
        (TARGET, "breaker_half_open"),
        (TARGET, "breaker_closed"),
    ]


def test_a_released_probe_goes_to_the_next_worker_at_once(clients) -> None:
    one, two = FleetBreakers(clients[0], RULE), FleetBreakers(clients[1], RULE)
    for moment in (100.0, 101.0, 102.0):
        one.failed(TARGET, now=moment)
    assert one.admit(TARGET, now=108.0, caller="a").probe
    assert not two.admit(TARGET, now=108.1, caller="b").allowed
    one.released(TARGET, caller="a")
    assert two.admit(TARGET, now=108.2, caller="b").probe


def test_the_breaker_of_one_target_holds_no_other(clients) -> None:
    breakers = FleetBreakers(clients[0], RULE)
    for moment in (100.0, 101.0, 102.0):
        breakers.failed(TARGET, now=moment)
    assert breakers.admit(TARGET + "-other", now=103.0, caller="a").allowed


# --- one read a delivery: the attempt's check stands for its send ---------------------------


class CountingRedis(redis.Redis):
    """A real client that keeps the name of every command it sends."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    def execute_command(self, *args, **options):
        self.sent.append(str(args[0]).upper())
        return super().execute_command(*args, **options)


def claimed_item() -> LedgerItem:
    moment = "2026-12-07T00:00:00+00:00"
    return LedgerItem(
        "e-1", TARGET, Status.IN_PROGRESS, 1, "{}", moment, moment, claim_token="token-1"
    )


@pytest.fixture()
def counting(redis_url: str) -> Iterator[CountingRedis]:
    client = CountingRedis(connection_pool=redis.ConnectionPool.from_url(redis_url))
    client.delete(breaker_key(TARGET))
    client.sent.clear()
    yield client
    client.close()
    client.connection_pool.disconnect()


def deliver(holds: TargetHolds, *, after: Callable[[], None] = lambda: None) -> None:
    item = claimed_item()
    read = holds.check(item)
    after()
    with holds.sending(item, read=read):
        pass


def test_a_delivery_through_a_closed_breaker_reads_it_once_and_writes_nothing(counting) -> None:
    holds = TargetHolds(breakers=FleetBreakers(counting, RULE), clock=FakeClock(100.0))
    deliver(holds)
    assert counting.sent == ["HGETALL"]
    assert not counting.exists(breaker_key(TARGET))


def test_a_success_after_failures_were_read_clears_them(counting) -> None:
    breakers = FleetBreakers(counting, RULE)
    breakers.failed(TARGET, now=99.0)
    deliver(TargetHolds(breakers=breakers, clock=FakeClock(100.0)))
    assert breakers.read(TARGET).failures == ()


def test_a_read_older_than_the_reuse_is_read_again_before_the_send(counting) -> None:
    clock = FakeClock(100.0)
    breakers = FleetBreakers(counting, RULE)

    def opened_meanwhile() -> None:  # a long verification; the breaker opens meanwhile
        for moment in (100.1, 100.2, 100.3):
            breakers.failed(TARGET, now=moment)
        clock.advance(BREAKER_REUSE_SECONDS + 0.5)

    with pytest.raises(TargetHeld):
        deliver(TargetHolds(breakers=breakers, clock=clock), after=opened_meanwhile)
