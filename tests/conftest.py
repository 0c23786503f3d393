"""The servers any test may ask for, each started on its first request: a redis-server
and a moto server once per session, the Genesys simulator per test (or per module).

tests/unit/conftest.py refuses them all; the other folders use them as they are here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from helpers import SIM_CLIENT_ID, SIM_CLIENT_SECRET

from devstack.moto_server import MotoServer, aws_environment
from devstack.process import free_port
from devstack.redis_server import RedisServer
from dlq.settings import Settings

#: The test Redis's port, chosen before any test module is imported: the Celery app reads
#: its broker from REDIS_URL whenever its configuration is first touched, which may be
#: while tests are collected.
REDIS_PORT = free_port()
os.environ["REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with slow tests first, the rest in their order: `make pytest` hands whole files
    to its processes in this order, so the minutes-long ones start at once and the many
    short ones fill in after them, instead of one long file finishing alone at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: order kept within


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    # Not persisting: a restart starts empty, as the tests of losing Redis need.
    server = RedisServer(tmp_path_factory.mktemp("redis"), port=REDIS_PORT, persist=False)
    with server:
        yield server


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
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of its own that speaks TLS only, with a certificate from a CA made for
    it (`tls_redis.tls.ca`: what clients must trust) and a password (`tls_redis.password`)."""
    from devstack.tls import make_certificates

    workdir = tmp_path_factory.mktemp("redis-tls")
    files = make_certificates(workdir / "tls")
    password = f"tls-{uuid.uuid4().hex}"
    with RedisServer(workdir, password=password, persist=False, tls=files) as server:
        yield server


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


# --- Genesys Cloud: the simulator and settings that point the client at it -------------


@pytest.fixture()
def genesys_sim() -> Iterator[Any]:
    """A fresh Genesys Cloud simulator on a free loopback port; tests seed conversations."""
    from devstack.genesys_sim import GenesysSimulator

    with GenesysSimulator(client_id=SIM_CLIENT_ID, client_secret=SIM_CLIENT_SECRET) as sim:
        yield sim


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    """One simulator for a module's end-to-end tests, its own limit out of the way."""
    from devstack.genesys_sim import GenesysSimulator

    with GenesysSimulator(
        client_id=SIM_CLIENT_ID, client_secret=SIM_CLIENT_SECRET, rate_limit=100_000
    ) as simulator:
        yield simulator


@pytest.fixture()
def sim_admin(genesys_sim: Any) -> Iterator[Any]:
    """The typed admin client of `genesys_sim` (seed, script, stats, reset...)."""
    admin = genesys_sim.admin
    yield admin
    admin.close()


@pytest.fixture()
def genesys_settings(
    make_settings: Callable[..., Settings], genesys_sim: Any, redis_url: str
) -> Settings:
    """Settings for the Genesys client against `genesys_sim` and the test Redis."""
    return make_settings(
        genesys_api_base_url=genesys_sim.url,
        genesys_login_base_url=genesys_sim.url,
        genesys_client_id=SIM_CLIENT_ID,
        genesys_client_secret=SIM_CLIENT_SECRET,
        genesys_connect_timeout=2.0,
        genesys_read_timeout=2.0,
        genesys_rate_limit_per_minute=6000,
        redis_url=redis_url,
    )
