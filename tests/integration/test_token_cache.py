"""The shared token cache: one token per OAuth client for the whole fleet, refreshed once."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import redis
from helpers import eventually
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry

from devstack.process import free_port
from devstack.sim_admin import TOKEN, SimAdmin
from dlq.fleet import digest
from dlq.genesys.auth import IssuedToken, TokenCache, fetch_token
from dlq.genesys.transport import RequestsTransport
from dlq.settings import Settings


def cache_for(settings: Settings, client: redis.Redis | None) -> TokenCache:
    return TokenCache(
        client, settings.genesys_client_id, lambda: fetch_token(settings, RequestsTransport())
    )


def portable(settings: Settings) -> dict[str, Any]:
    """Settings as plain values for a child process, the secret included on purpose."""
    fields = settings.model_dump(mode="json")
    fields["genesys_client_secret"] = settings.genesys_client_secret.get_secret_value()
    return fields


def _fleet_process(fields: dict[str, Any], barrier: Any, threads: int, out: Any) -> None:
    """One worker process: `threads` threads asking for the token at the same moment."""
    settings = Settings(_env_file=None, **fields)
    client = redis.Redis.from_url(settings.redis_url)
    cache = cache_for(settings, client)
    local = threading.Barrier(threads)
    tokens: list[str] = []

    def ask() -> None:
        local.wait()
        tokens.append(cache.get().get_secret_value())

    barrier.wait()
    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(tokens)


def test_a_fleet_of_processes_and_threads_makes_one_token_request(
    genesys_settings: Settings, sim_admin: SimAdmin
) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    fields = portable(genesys_settings)
    processes = [
        ctx.Process(target=_fleet_process, args=(fields, barrier, 8, out)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    tokens = [token for _ in processes for token in out.get(timeout=60)]
    for process in processes:
        process.join(timeout=30)
    assert len(tokens) == 32
    assert len(set(tokens)) == 1
    assert sim_admin.stats().count(TOKEN) == 1


def test_the_token_is_stored_under_a_digest_of_the_client_id_with_a_margin(
    genesys_settings: Settings, redis_client: redis.Redis, sim_admin: SimAdmin
) -> None:
    cache = cache_for(genesys_settings, redis_client)
    token = cache.get()
    client_id = genesys_settings.genesys_client_id
    assert cache.key == f"dlq:genesys:token:{digest(client_id)}"
    assert client_id not in cache.key
    assert redis_client.get(cache.key) == token.get_secret_value().encode()
    ttl = redis_client.pttl(cache.key) / 1000
    assert 86399 * 0.85 < ttl <= 86399 - 300


def test_an_expired_token_is_replaced(
    genesys_settings: Settings, redis_client: redis.Redis, sim_admin: SimAdmin
) -> None:
    sim_admin.configure(token_lifetime=1)
    cache = cache_for(genesys_settings, redis_client)
    first = cache.get()
    # Waits on the shared token's expiry itself, not on the clock and a margin.
    eventually(lambda: not redis_client.exists(cache.key), timeout=10, what="the token expires")
    assert cache.get() != first
    assert sim_admin.stats().tokens_issued == 2


def test_invalidate_drops_only_the_token_that_failed(redis_client: redis.Redis) -> None:
    fetched: list[int] = []

    def fetch() -> IssuedToken:
        fetched.append(1)
        return IssuedToken(SecretStr(f"token-{len(fetched)}"), 3600)

    cache = TokenCache(redis_client, "client", fetch)
    assert cache.get().get_secret_value() == "token-1"
    cache.invalidate(SecretStr("token-0"))  # an older token: someone already replaced it
    assert cache.get().get_secret_value() == "token-1"
    cache.invalidate(SecretStr("token-1"))
    assert cache.get().get_secret_value() == "token-2"


def test_fifty_callers_seeing_one_401_cause_one_new_token(
    genesys_settings: Settings, redis_client: redis.Redis, sim_admin: SimAdmin
) -> None:
    caches = [cache_for(genesys_settings, redis_client) for _ in range(50)]
    refused = caches[0].get()
    barrier = threading.Barrier(50)
    seen: list[SecretStr] = []

    def on_401(cache: TokenCache) -> None:
        barrier.wait()
        cache.invalidate(refused)
        seen.append(cache.get())

    threads = [threading.Thread(target=on_401, args=(c,)) for c in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({s.get_secret_value() for s in seen}) == 1
    assert seen[0] != refused
    assert sim_admin.stats().tokens_issued == 2


def test_without_redis_each_process_keeps_its_own_token(
    genesys_settings: Settings, sim_admin: SimAdmin
) -> None:
    # No client-side retries: the cache's own fallback is what is under test.
    unreachable = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    cache = cache_for(genesys_settings, unreachable)
    first = cache.get()
    assert cache.get() == first
    cache.invalidate(first)
    assert cache.get() != first
    assert sim_admin.stats().tokens_issued == 2


def test_repr_never_shows_the_token(redis_client: redis.Redis) -> None:
    issued = IssuedToken(SecretStr("very-secret-token"), 60)
    cache = TokenCache(redis_client, "client", lambda: issued)
    cache.get()
    for text in (repr(issued), str(issued), repr(cache), repr(cache.get())):
        assert "very-secret-token" not in text
