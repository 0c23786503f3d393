"""The benchmarks' count of Redis round trips, on a real redis-server.

The floor prices each of the workers' requests to Redis as one GET's round trip. A
request is a command, a pipeline of them or a script, while commandstats counts every
command, a script's own among them: the count of requests must be the one a script
or a pipeline adds one to, whatever it carries.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bench import floor as bench_floor
from bench.common import redis_traffic
from devstack.process import free_port
from devstack.redis_server import RedisServer


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    """A redis-server of this module's own: no other test's client adds to its counts."""
    folder: Path = tmp_path_factory.mktemp("traffic")
    with RedisServer(folder, port=free_port(), persist=False) as server:
        client = redis.Redis.from_url(server.url)
        yield client
        client.close()


def test_a_command_a_pipeline_and_a_script_are_one_round_trip_each(
    own_redis: redis.Redis,
) -> None:
    script = own_redis.register_script(
        "redis.call('SET', KEYS[1], '1'); redis.call('INCR', KEYS[1]); "
        "return redis.call('GET', KEYS[1])"
    )
    script(keys=["traffic:warm"])  # loaded: later calls are one EVALSHA each
    before = redis_traffic(own_redis)

    own_redis.get("traffic:a")
    pipeline = own_redis.pipeline(transaction=False)
    for _ in range(5):
        pipeline.get("traffic:a")
    pipeline.execute()
    script(keys=["traffic:b"])

    counted = redis_traffic(own_redis).since(before)

    assert counted.requests == 3
    assert counted.commands == {"get": 7, "evalsha": 1, "set": 1, "incr": 1}


def test_the_benchmarks_own_commands_and_the_idle_rate_are_left_out(
    own_redis: redis.Redis,
) -> None:
    before = redis_traffic(own_redis)
    for _ in range(4):
        own_redis.lpush("traffic:queue", "task")
    own_redis.llen("traffic:queue")  # the benchmark's look at a queue: not the broker's
    own_redis.info("commandstats")

    counted = redis_traffic(own_redis).since(before)

    assert counted.requests == 6
    assert bench_floor.broker_round_trips(counted, 4) == 1.0
    assert bench_floor.broker_round_trips(counted, 2, idle=2.0) == 1.0
