"""Real parts for the tests: a redis-server and a moto server, started once per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from devstack.moto_server import MotoServer, aws_environment
from devstack.redis_server import RedisServer
from dlq.settings import Settings

#: Copies of ../shared/fixtures, so a clone tests on its own.
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    saved = os.environ.get("REDIS_URL")
    with server:
        # The Celery app reads its broker from the settings, i.e. from here.
        os.environ["REDIS_URL"] = server.url
        yield server
    if saved is None:
        os.environ.pop("REDIS_URL", None)
    else:
        os.environ["REDIS_URL"] = saved


@pytest.fixture()
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied before each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    saved = {key: os.environ.get(key) for key in aws_environment(server.url)}
    with server:
        os.environ.update(aws_environment(server.url))
        yield server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture()
def unique() -> str:
    """A short unique suffix, so tests sharing the moto server never share a resource."""
    return uuid.uuid4().hex[:10]


@pytest.fixture()
def make_settings() -> Callable[..., Settings]:
    """Settings built from keyword arguments only: no `.env`, no stray environment."""

    def build(**values: Any) -> Settings:
        return Settings(_env_file=None, **values)

    return build
