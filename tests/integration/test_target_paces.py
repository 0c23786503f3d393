"""Targets' paces on a real redis-server: however many processes and threads ask, no
sliding second holds more grants than the rate allows (ceil(rate): the pace has no burst).

Grant times are Redis's own (`Grant.at`), so the count is of what the pace decided, not of
when each caller happened to hear it.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from counting import CountingRedis, counting_client
from windows import busiest_window

from dlq.clock import FakeClock
from dlq.errors import BudgetWait
from dlq.ratelimit.pace import UNPACED_REUSE_SECONDS, Pace, Slots, most_in_a_second, pace_prefix
from dlq.targets.pacing import OwnLimits, PaceGate, TargetRates

TARGET = "arn:aws:sqs:us-east-1:111122223333:crm-events"
HAMMER_SECONDS = 3.0


def _hammer(redis_url: str, rate: float, threads: int, barrier: Any, out: Any) -> None:
    """One process: `threads` callers, each with a client of its own, asking as fast as the
    pace answers; puts the Redis times of its grants."""
    granted: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        pace = Pace(redis.Redis.from_url(redis_url))
        deadline = time.monotonic() + HAMMER_SECONDS
        while time.monotonic() < deadline:
            grant = pace.acquire(TARGET, rate=rate)
            if grant.at is not None:
                with lock:
                    granted.append(grant.at)
            else:
                time.sleep(min(grant.wait, 0.02))  # ask again early: a greedy caller

    barrier.wait()
    callers = [threading.Thread(target=caller) for _ in range(threads)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    out.put(granted)


def hammered(redis_url: str, rate: float, *, processes: int = 2, threads: int = 3) -> list[float]:
    """Every grant `processes` processes of `threads` callers were given, by Redis time."""
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_hammer, args=(redis_url, rate, threads, barrier, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    grants = [at for _ in workers for at in out.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=30)
    return grants


def test_two_processes_never_get_more_than_the_rate_in_any_sliding_second(redis_url: str):
    grants = hammered(redis_url, 5)

    assert len(grants) > most_in_a_second(5)  # enough to break the pace, had it a gap
    assert busiest_window(grants) <= most_in_a_second(5) == 5


def test_a_fractional_rate_allows_its_rate_rounded_up_in_any_second(redis_url: str):
    grants = hammered(redis_url, 2.5)

    assert len(grants) > most_in_a_second(2.5)
    assert busiest_window(grants) <= 3


def test_the_lower_of_the_configured_and_the_destinations_own_rate_paces_the_gate(
    redis_url: str,
):
    """REPLAY_TARGET_RATES says 5, the API destination's own limit 2: 2 win, by the gate's
    callers (threads, each with its own client)."""
    granted: list[float] = []
    lock = threading.Lock()
    rates = TargetRates({"arn:aws:sqs:*:crm-*": 5})

    def caller() -> None:
        client = redis.Redis.from_url(redis_url)
        gate = PaceGate(Pace(client), Slots(client), rates, lease_seconds=30)
        deadline = time.monotonic() + HAMMER_SECONDS
        while time.monotonic() < deadline:
            try:
                with gate.sending(TARGET, limits=OwnLimits(rate=2)), lock:
                    granted.append(time.monotonic())
            except BudgetWait as wait:
                time.sleep(min(wait.retry_after or 0.0, 0.05))

    callers = [threading.Thread(target=caller) for _ in range(4)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()

    assert len(granted) > 2
    # Times heard by the callers, not Redis's: one more for the spread of hearing them.
    assert busiest_window(granted) <= 2 + 1


def test_a_redrive_pace_installed_elsewhere_slows_every_process(redis_url: str, redis_client):
    Pace(redis_client).set_temporary(TARGET, 2, seconds=60)

    grants = hammered(redis_url, 10)

    assert busiest_window(grants) <= 2


def test_a_hold_after_a_429_reaches_another_process(redis_url: str, redis_client):
    Pace(redis_client).hold(TARGET, 5)

    elsewhere = Pace(redis.Redis.from_url(redis_url)).acquire(TARGET, rate=100)

    assert not elsewhere.granted and 4 < elsewhere.wait <= 5


def test_sends_in_flight_never_pass_the_cap_across_clients(redis_url: str):
    in_flight, most = 0, 0
    lock = threading.Lock()

    def caller() -> None:
        nonlocal in_flight, most
        slots = Slots(redis.Redis.from_url(redis_url))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            token, wait = slots.take(TARGET, limit=2, lease_seconds=30)
            if token is None:
                time.sleep(min(wait, 0.01))
                continue
            with lock:
                in_flight += 1
                most = max(most, in_flight)
            time.sleep(0.01)
            with lock:
                in_flight -= 1
            slots.give_back(TARGET, token)

    callers = [threading.Thread(target=caller) for _ in range(6)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()

    assert most == 2


def test_an_unpaced_target_nobody_holds_is_granted_with_one_read_and_no_clock(redis_url) -> None:
    client, clock = redis.Redis.from_url(redis_url), FakeClock()
    pace = Pace(client, clock=clock)
    pace.acquire(TARGET, rate=None)  # loads the script
    client.config_resetstat()

    grants = []
    for _ in range(5):  # each a second apart: each asks the script
        clock.advance(UNPACED_REUSE_SECONDS)
        grants.append(pace.acquire(TARGET, rate=None))

    stats = client.info("commandstats")
    assert all(g.granted and g.at is None and g.rate is None for g in grants)
    assert stats["cmdstat_mget"]["calls"] == 5
    assert "cmdstat_time" not in stats and "cmdstat_get" not in stats
    pace.hold(TARGET, 30.0)  # a 429's Retry-After: now the clock is read, and it waits
    assert 29 < pace.acquire(TARGET, rate=None).wait <= 30
    client.close()


# --- one question a second: an unpaced target's finding stands for the process's sends ------


@pytest.fixture()
def counting(redis_url: str) -> Iterator[CountingRedis]:
    client = counting_client(redis_url)
    client.delete(*(f"{pace_prefix(TARGET)}:{key}" for key in ("tat", "held", "temporary")))
    Pace(client).acquire(TARGET, rate=None)  # loads the script
    client.config_resetstat()
    client.sent.clear()
    yield client
    client.close()
    client.connection_pool.disconnect()


def test_sends_to_an_unpaced_target_within_a_second_ask_redis_once(counting) -> None:
    clock = FakeClock()
    pace = Pace(counting, clock=clock)

    grants = []
    for _ in range(50):
        grants.append(pace.acquire(TARGET, rate=None))
        clock.advance(UNPACED_REUSE_SECONDS / 100)

    assert all(g.granted and g.rate is None for g in grants)
    assert counting.sent == ["EVALSHA"]
    assert counting.info("commandstats")["cmdstat_mget"]["calls"] == 1


def test_a_paced_target_asks_redis_on_every_send(counting) -> None:
    pace = Pace(counting, clock=FakeClock())

    for _ in range(3):
        pace.acquire(TARGET, rate=1000)

    assert counting.sent == ["EVALSHA"] * 3


def test_a_hold_this_process_sets_holds_its_next_send_at_once(counting) -> None:
    pace = Pace(counting, clock=FakeClock())
    assert pace.acquire(TARGET, rate=None).granted

    pace.hold(TARGET, 30.0)

    assert 29 < pace.acquire(TARGET, rate=None).wait <= 30


def test_a_temporary_rate_installed_through_this_process_paces_its_next_send_at_once(
    counting,
) -> None:
    pace = Pace(counting, clock=FakeClock())
    assert pace.acquire(TARGET, rate=None).granted

    pace.set_temporary(TARGET, 2, seconds=60)

    assert pace.acquire(TARGET, rate=None).rate == 2


@pytest.mark.parametrize(
    ("change", "held"),
    [
        (lambda pace: pace.hold(TARGET, 30.0), lambda grant: 29 < grant.wait <= 30),
        (lambda pace: pace.set_temporary(TARGET, 2, seconds=60), lambda grant: grant.rate == 2),
    ],
    ids=["a 429 hold", "a temporary rate"],
)
def test_what_another_process_sets_on_a_target_holds_this_one_once_its_finding_is_over(
    counting, redis_url, change, held
) -> None:
    clock = FakeClock()
    pace = Pace(counting, clock=clock)
    assert pace.acquire(TARGET, rate=None).granted
    elsewhere = redis.Redis.from_url(redis_url)
    change(Pace(elsewhere))

    within = pace.acquire(TARGET, rate=None)  # the documented lag: at most the reuse
    clock.advance(UNPACED_REUSE_SECONDS)
    after = pace.acquire(TARGET, rate=None)

    assert within.granted and within.rate is None
    assert held(after)
    elsewhere.close()
