"""Every Redis user over `rediss://`, against a redis-server that speaks TLS only and wants
a password (`tls_redis`): the certificate is checked against REDIS_TLS_CA_FILE, and a
client that does not trust the server's CA is refused with the setting to fix."""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from broker import celery_app
from celery.contrib.testing.worker import start_worker
from click.testing import CliRunner
from pydantic import SecretStr

from cli.main import main
from devstack.redis_server import RedisServer
from dlq.aws import aws_client
from dlq.clock import SYSTEM_CLOCK
from dlq.doctor.broker import check_redis
from dlq.doctor.explain import explain_redis
from dlq.genesys.auth import IssuedToken, TokenCache
from dlq.ledger import create_table
from dlq.locks import ConversationLocks
from dlq.metrics.counters import OutcomeCounters
from dlq.ratelimit.limiter import RateLimiter
from dlq.redisclient import redis_client
from dlq.settings import Settings
from tasks.names import REPLAY_QUEUE


@pytest.fixture()
def tls_env(tls_redis: RedisServer) -> dict[str, str]:
    """What an operator exports for the TLS Redis: rediss:// with its password, its CA."""
    assert tls_redis.tls is not None and tls_redis.password is not None
    redis.Redis.from_url(
        tls_redis.url, password=tls_redis.password, ssl_ca_certs=str(tls_redis.tls.ca)
    ).flushall()
    url = tls_redis.url.replace("rediss://", f"rediss://:{tls_redis.password}@")
    return {"REDIS_URL": url, "REDIS_TLS_CA_FILE": str(tls_redis.tls.ca)}


@pytest.fixture()
def tls_settings(tls_env: dict[str, str], make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(**{name.lower(): value for name, value in tls_env.items()})


@pytest.fixture()
def client(tls_settings: Settings) -> Iterator[redis.Redis]:
    made = redis_client(tls_settings)
    yield made
    made.close()


def test_a_conversation_lock_is_taken_and_released_over_tls(client):
    locks = ConversationLocks(client, ttl_seconds=30)

    with locks.hold("conversation-1") as held:
        assert held
        with locks.hold("conversation-1") as other:
            assert not other
    assert client.exists("dlq:lock:conversation-1") == 0


def test_the_fleet_rate_limiter_runs_its_scripts_over_tls(client):
    limiter = RateLimiter(client, "tls-client", per_minute=60, burst=1)

    assert limiter.acquire() == 0.0
    assert limiter.acquire() > 0.0  # the shared budget, kept in Redis, was spent


def test_the_shared_genesys_token_is_cached_over_tls(client):
    fetched: list[int] = []

    def fetch() -> IssuedToken:
        fetched.append(1)
        return IssuedToken(SecretStr("tls-token-1"), expires_in=600)

    first, second = TokenCache(client, "tls-client", fetch), TokenCache(client, "tls-client", fetch)

    assert first.get().get_secret_value() == "tls-token-1"
    assert second.get().get_secret_value() == "tls-token-1"
    assert fetched == [1]  # the second process read it from Redis
    assert client.get(first.key) == b"tls-token-1"


def test_a_celery_task_is_sent_and_consumed_over_tls(tls_env):
    app = celery_app(tls_env)
    received: queue.Queue[int] = queue.Queue()

    def echo(n: int) -> None:
        received.put(n)

    app.task(name="tls-test.echo")(echo)

    assert app.conf.broker_use_ssl["ssl_ca_certs"] == tls_env["REDIS_TLS_CA_FILE"]
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False):
        app.send_task("tls-test.echo", args=(7,))
        assert received.get(timeout=20) == 7


def test_flowers_broker_view_counts_the_queue_over_tls(tls_env, client):
    from flower.utils.broker import Broker

    app = celery_app(tls_env)
    app.send_task("tls-test.echo", args=(1,))
    broker = Broker(
        app.connection().as_uri(include_password=True),
        broker_options=app.conf.broker_transport_options,
        broker_use_ssl=app.conf.broker_use_ssl,
    )

    assert asyncio.run(broker.queues([REPLAY_QUEUE])) == [{"name": REPLAY_QUEUE, "messages": 1}]


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture()
def cli_env(tls_env, moto_server, unique) -> dict[str, str]:
    table = f"ledger-{unique}"
    env = {**tls_env, "LEDGER_TABLE": table, "REPLAY_PARKING_QUEUE_URL": ""}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        create_table(aws_client("dynamodb", Settings(_env_file=None)), table)
    return env


def test_status_reads_the_outcome_counters_over_tls(cli_env, tls_settings, client):
    counters = OutcomeCounters(client, cli_env["LEDGER_TABLE"], clock=SYSTEM_CLOCK)
    counters.ingested("accepted", target_arn=None, dlq_error_code=None)

    result = run(cli_env, "status", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["by_outcome"]["ingested"] == 1


def test_a_client_without_the_ca_is_refused_and_told_which_setting_to_fix(cli_env, tls_redis):
    without_ca = {**cli_env, "REDIS_TLS_CA_FILE": ""}

    result = run(without_ca, "status")

    assert result.exit_code == 2, result.output
    assert "certificate is not signed by a CA this process trusts" in result.output
    assert "set REDIS_TLS_CA_FILE" in result.output
    assert tls_redis.password not in result.output


def test_the_refusal_explained_names_the_setting_and_hides_the_password(
    tls_settings, make_settings
):
    untrusting = make_settings(redis_url=tls_settings.redis_url)

    with pytest.raises(redis.ConnectionError) as refused:
        redis_client(untrusting).ping()
    explained = explain_redis(refused.value, untrusting.redis_url)

    assert explained.configuration
    assert explained.fix == "set REDIS_TLS_CA_FILE to the PEM bundle of the CA that signed it"
    assert untrusting.redis_url_password not in explained.text


def test_doctor_says_the_connection_is_encrypted_and_verified(tls_settings):
    checks = {check.name: check for check in check_redis(tls_settings)}

    assert checks["redis"].status == "pass"
    assert checks["redis tls"].status == "pass"
    assert checks["redis tls"].detail == (
        f"TLS (certificate verified against CA {tls_settings.redis_tls_ca_file})"
    )


def test_doctor_passes_plain_text_on_loopback_only(make_settings, redis_url):
    [_, tls, *_] = check_redis(make_settings(redis_url=redis_url))

    assert (tls.status, tls.detail) == ("pass", "not encrypted, on this host only (loopback)")
