"""What one acquire of the shared budget costs Redis, counted by a real redis-server.

INFO commandstats counts the EVALSHA and every command its script runs. These counts are
a guard: a change that raises them should say why. Before the limiter's state became one
hash, an acquire cost (with a reported allowance, every Genesys response's, one more):

| acquire | before | now |
| --- | --- | --- |
| HIGH granted | 10 (11) | 5 |
| LOW granted, no HIGH caller about | 10 (11) | 5 |
| LOW refused, given a turn | 8 (9) | 4 |
| LOW granted while HIGH is about | 11 (12) | 6 |
| a tracking call: a turn, then a grant | 18 (19) | 9 |
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from helpers import eventually

from dlq.ratelimit import Priority, RateLimiter
from dlq.ratelimit.limiter import limiter_keys


@pytest.fixture()
def client(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    """The test's Redis with the limiter's scripts loaded, so no SCRIPT LOAD is counted."""
    warm = RateLimiter(redis_client, "warm-up", per_minute=60)
    warm.acquire()
    warm.penalise(0.001)
    yield redis_client


def commands(client: redis.Redis, action: Callable[[], object]) -> Counter[str]:
    """The commands redis-server ran for `action`, by name (the INFO reading them left out)."""
    before = client.info("commandstats")
    action()
    after = client.info("commandstats")
    counted: Counter[str] = Counter()
    for stat, figures in after.items():
        name = stat.removeprefix("cmdstat_")
        calls = figures["calls"] - before.get(stat, {"calls": 0})["calls"]
        if name != "info" and calls:
            counted[name] = calls
    return counted


def budget(client: redis.Redis, **kw: Any) -> RateLimiter:
    return RateLimiter(client, "client-a", **{"per_minute": 6000, "burst": 50, **kw})


def test_a_high_grant_costs_five_commands(client: redis.Redis) -> None:
    high = budget(client)
    high.acquire(Priority.HIGH)

    counted = commands(client, lambda: high.acquire(Priority.HIGH))

    assert counted == Counter(evalsha=1, time=1, hmget=1, hset=1, zadd=1)


def test_reporting_the_servers_allowance_costs_no_command(client: redis.Redis) -> None:
    reporting = budget(client)
    reporting.note_server_allowance(6000)
    reporting.acquire(Priority.HIGH)
    reporting.note_server_allowance(6000)

    counted = commands(client, lambda: reporting.acquire(Priority.HIGH))

    assert counted == Counter(evalsha=1, time=1, hmget=1, hset=1, zadd=1)


def test_a_low_grant_with_no_high_caller_about_costs_five_commands(client: redis.Redis) -> None:
    low = budget(client)
    low.acquire(Priority.LOW)

    counted = commands(client, lambda: low.acquire(Priority.LOW))

    assert counted == Counter(evalsha=1, time=1, hmget=1, hset=1, zadd=1)


def test_a_refused_low_caller_given_a_turn_costs_four_commands(client: redis.Redis) -> None:
    low = budget(client, per_minute=60, burst=1)
    low.acquire(Priority.LOW)
    assert low.acquire(Priority.LOW) > 0

    counted = commands(client, lambda: low.acquire(Priority.LOW))

    assert counted == Counter(evalsha=1, time=1, hmget=1, hset=1)


def test_a_low_grant_while_high_is_about_also_counts_the_window(client: redis.Redis) -> None:
    mixed = budget(client)
    mixed.acquire(Priority.HIGH)
    mixed.acquire(Priority.LOW)

    counted = commands(client, lambda: mixed.acquire(Priority.LOW))

    assert counted == Counter(evalsha=1, time=1, hmget=1, zcount=1, hset=1, zadd=1)


def test_a_tracking_call_that_waits_its_turn_costs_nine_commands(client: redis.Redis) -> None:
    # A slot every 0.5 s: with one every 10 ms, CI's loaded machine once let the slot come
    # round between the grant and the call meant to be refused.
    low = budget(client, per_minute=120, burst=1)
    low.acquire(Priority.LOW)
    waits: list[float] = []

    refused = commands(client, lambda: waits.append(low.acquire(Priority.LOW)))
    time.sleep(waits[0])
    granted = commands(client, lambda: waits.append(low.acquire(Priority.LOW)))

    assert waits[0] > 0 and waits[1] == 0.0
    assert refused.total() + granted.total() == 9


def test_expiries_and_the_trim_of_the_log_are_not_set_on_every_grant(
    client: redis.Redis,
) -> None:
    paced = budget(client)
    first = commands(client, lambda: paced.acquire(Priority.HIGH))
    later = commands(client, lambda: [paced.acquire(Priority.HIGH) for _ in range(20)])

    assert first["pexpire"] == 2 and first["zremrangebyscore"] == 1
    assert later["pexpire"] == 0 and later["zremrangebyscore"] == 0
    assert later["evalsha"] == 20


def test_every_key_the_limiter_writes_expires(client: redis.Redis) -> None:
    paced = budget(client, per_minute=60, burst=1)
    paced.acquire(Priority.LOW)
    paced.acquire(Priority.LOW)  # a turn
    paced.acquire(Priority.HIGH)
    paced.penalise(600)

    state, granted = limiter_keys("client-a")
    assert 600_000 < client.pttl(state) <= 660_000  # the hold, and one window beyond
    assert 0 < client.pttl(granted) <= 120_000  # two windows


def test_the_log_keeps_less_than_two_windows_of_grants(client: redis.Redis) -> None:
    # 0.2 s windows at 60,000 calls a minute: granted until the log has seen five windows.
    paced = budget(client, per_minute=60_000, window=0.2, burst=1000)
    granted = limiter_keys("client-a")[1]
    assert paced.acquire(Priority.HIGH) == 0.0
    start = _score(client, granted, 0)

    def past_five_windows() -> bool:
        paced.acquire(Priority.HIGH)
        return _score(client, granted, -1) - start > 5 * 0.2

    eventually(past_five_windows, timeout=30, what="grants over five windows", every=0.001)
    assert _score(client, granted, -1) - _score(client, granted, 0) < 2 * 0.2


def _score(client: redis.Redis, key: str, index: int) -> float:
    scores = client.zrange(key, index, index, withscores=True)
    return float(scores[0][1])
