"""The target breaker in Redis (dlq.holds.fleet): shared by every worker, one probe."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import redis
from counting import CountingRedis, counting_client

from dlq.clock import FakeClock
from dlq.holds.breaker import BreakerRule, BreakerState
from dlq.holds.fleet import FleetBreakers, breaker_key
from dlq.ledger import LedgerItem, Status
from dlq.replay.holds import BREAKER_REUSE_SECONDS, TargetHeld, TargetHolds
from dlq.targets.errors import TargetUnavailable

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


def claimed_item() -> LedgerItem:
    moment = "2026-12-07T00:00:00+00:00"
    return LedgerItem(
        "e-1", TARGET, Status.IN_PROGRESS, 1, "{}", moment, moment, claim_token="token-1"
    )


@pytest.fixture()
def counting(redis_url: str) -> Iterator[CountingRedis]:
    client = counting_client(redis_url)
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


# --- one read a second: a clean read stands for the process's other deliveries -------------


def failing_delivery(holds: TargetHolds) -> None:
    """A delivery whose send finds the target unwell (the breaker hears of it)."""
    item = claimed_item()
    read = holds.check(item)
    with pytest.raises(TargetUnavailable), holds.sending(item, read=read):
        raise TargetUnavailable("503", target_arn=TARGET, code="HTTP503")


def test_deliveries_to_a_clean_target_within_a_second_read_its_breaker_once(counting) -> None:
    clock = FakeClock(100.0)
    holds = TargetHolds(breakers=FleetBreakers(counting, RULE), clock=clock)

    for _ in range(50):
        deliver(holds)
        clock.advance(BREAKER_REUSE_SECONDS / 100)

    assert counting.sent == ["HGETALL"]


def test_deliveries_read_the_breaker_again_once_the_reuse_is_over(counting) -> None:
    clock = FakeClock(100.0)
    holds = TargetHolds(breakers=FleetBreakers(counting, RULE), clock=clock)

    deliver(holds)
    clock.advance(BREAKER_REUSE_SECONDS)
    deliver(holds)

    assert counting.sent == ["HGETALL", "HGETALL"]


def test_a_failure_this_process_records_is_read_by_its_next_delivery_at_once(counting) -> None:
    holds = TargetHolds(breakers=FleetBreakers(counting, RULE), clock=FakeClock(100.0))
    deliver(holds)
    failing_delivery(holds)
    counting.sent.clear()

    deliver(holds)  # reads it again, sees the failure, and its success clears it

    assert counting.sent[0] == "HGETALL"
    assert FleetBreakers(counting, RULE).read(TARGET).failures == ()


def test_a_breaker_this_process_opens_holds_its_next_delivery_at_once(counting) -> None:
    holds = TargetHolds(breakers=FleetBreakers(counting, RULE), clock=FakeClock(100.0))
    deliver(holds)
    for _ in range(RULE.failures):
        failing_delivery(holds)

    with pytest.raises(TargetHeld):
        holds.check(claimed_item())


def test_a_breaker_another_process_opens_holds_this_one_once_its_read_is_over(
    counting, clients
) -> None:
    clock = FakeClock(100.0)
    holds = TargetHolds(breakers=FleetBreakers(counting, RULE), clock=clock)
    deliver(holds)
    elsewhere = FleetBreakers(clients[1], RULE)
    for moment in (100.1, 100.2, 100.3):
        elsewhere.failed(TARGET, now=moment)

    deliver(holds)  # within the second its clean read stands for: the documented lag
    clock.advance(BREAKER_REUSE_SECONDS)

    with pytest.raises(TargetHeld):
        holds.check(claimed_item())


def test_a_read_that_saw_failures_stands_for_no_other_delivery(counting, clients) -> None:
    FleetBreakers(clients[1], RULE).failed(TARGET, now=99.0)
    holds = TargetHolds(breakers=FleetBreakers(counting, RULE), clock=FakeClock(100.0))

    holds.check(claimed_item())
    holds.check(claimed_item())

    assert counting.sent == ["HGETALL", "HGETALL"]


def test_after_the_cool_down_one_of_many_threads_sharing_the_reads_takes_the_probe(
    counting,
) -> None:
    clock = FakeClock(100.0)
    holds = TargetHolds(breakers=FleetBreakers(counting, RULE), clock=clock)
    deliver(holds)  # a clean read, kept
    for _ in range(RULE.failures):
        failing_delivery(holds)
    clock.advance(RULE.cooldown)
    threads, start = 12, threading.Barrier(12)
    sent: list[int] = []
    held: list[int] = []
    others_held = threading.Event()
    lock = threading.Lock()

    def attempt(n: int) -> None:
        item = replace(claimed_item(), claim_token=f"token-{n}")
        start.wait()
        try:
            read = holds.check(item)
            with holds.sending(item, read=read):
                with lock:
                    sent.append(n)
                others_held.wait(timeout=30)  # the probe is in flight while the others ask
        except TargetHeld:
            with lock:
                held.append(n)
                if len(held) == threads - 1:
                    others_held.set()

    runners = [threading.Thread(target=attempt, args=(n,)) for n in range(threads)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()

    assert (len(sent), len(held)) == (1, threads - 1)
