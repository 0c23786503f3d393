"""A real Redis client that keeps the name of every command it sends."""

from __future__ import annotations

from typing import Any

import redis


class CountingRedis(redis.Redis):
    """A real client that keeps the name of every command it sends (a script's inner
    commands are the server's: count those with INFO commandstats)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]).upper())
        return super().execute_command(*args, **options)


def counting_client(redis_url: str) -> CountingRedis:
    """A counting client on a pool of its own (redis-py's `from_url` would build a plain
    `Redis` for the class)."""
    return CountingRedis(connection_pool=redis.ConnectionPool.from_url(redis_url))
