"""`doctor`'s checks of Redis, the broker: reachable, encrypted, never evicting, persistent."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import redis
from redis.exceptions import RedisError, ResponseError

from dlq.doctor.check import Check
from dlq.doctor.explain import explain_redis, redact_url
from dlq.errors import DlqReplayError
from dlq.redisclient import redis_client
from dlq.redistls import RedisTls, encrypted
from dlq.secrets.redis_auth import RedisCredentials
from dlq.settings import Settings


def check_redis(settings: Settings) -> list[Check]:
    """Reachable, encrypted, never evicting, persistent: the broker must not drop tasks,
    and what it carries (events, the shared Genesys token) must not cross a network in
    clear. The client is the one every process builds (REDIS_TLS_*, the password
    REDIS_PASSWORD_SECRET_ARN names)."""
    url = settings.redis_url
    shown = redact_url(url)
    credentials = RedisCredentials.from_settings(settings)
    client = redis_client(
        settings, credentials, socket_connect_timeout=3, socket_timeout=5, decode_responses=True
    )
    try:
        client.ping()
    except DlqReplayError as exc:  # the password's secret could not be read
        return [
            Check(
                "redis",
                False,
                str(exc),
                "set REDIS_PASSWORD_SECRET_ARN to the secret or parameter that holds the "
                "password, and allow this role secretsmanager:GetSecretValue or "
                "ssm:GetParameter on it",
            ),
            tls_check(settings, connected=False),
            Check("redis eviction", None, "not checked: no password to connect with"),
            Check("redis persistence", None, "not checked: no password to connect with"),
        ]
    except RedisError as exc:
        explained = explain_redis(exc, url)
        return [
            Check("redis", False, explained.cause, explained.fix),
            tls_check(settings, connected=False),
            Check("redis eviction", None, "not checked: Redis is unreachable"),
            Check("redis persistence", None, "not checked: Redis is unreachable"),
        ]
    try:
        return [
            Check("redis", True, f"{shown} answers PING"),
            tls_check(settings, connected=True),
            _eviction(client),
            _persistence(client),
        ]
    finally:
        client.close()


def tls_check(settings: Settings, *, connected: bool) -> Check:
    """Whether the connection is encrypted: TLS whose certificate was verified (it always
    is: `dlq.redistls`), or plain text, which only loopback may carry safely."""
    url = settings.redis_url
    if encrypted(url):
        if not connected:
            return Check("redis tls", None, "not checked: no connection (see the redis line)")
        return Check("redis tls", True, RedisTls.from_settings(settings).describe())
    if _local(url):
        return Check("redis tls", True, "not encrypted, on this host only (loopback)")
    return Check(
        "redis tls",
        True,
        "not encrypted: tasks, events and the shared Genesys token cross the network in clear",
        "use rediss:// in REDIS_URL with a Redis that has TLS on (ElastiCache: in-transit "
        "encryption), and REDIS_TLS_CA_FILE if its CA is not in the system's trust store",
    )


def _local(url: str) -> bool:
    """Whether `url` reaches Redis without leaving this host (a socket, loopback)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _config(client: redis.Redis, name: str) -> str | None:
    """A CONFIG value, or None where CONFIG is disabled (managed Redis services)."""
    try:
        values: dict[str, str] = client.config_get(name)  # type: ignore[assignment]
    except ResponseError:
        return None
    return values.get(name)


def _eviction(client: redis.Redis) -> Check:
    policy = _config(client, "maxmemory-policy")
    if policy is None:
        return Check(
            "redis eviction",
            None,
            "not checked: this Redis refuses CONFIG GET (a managed service?)",
            "set maxmemory-policy noeviction in its configuration (on ElastiCache, the parameter "
            "group)",
        )
    if policy != "noeviction":
        return Check(
            "redis eviction",
            False,
            f"maxmemory-policy is {policy}: when memory runs short Redis silently drops keys "
            "(queued tasks, locks, the shared token)",
            "set maxmemory-policy noeviction (`redis-server --maxmemory-policy noeviction`, "
            "or CONFIG SET then CONFIG REWRITE; on ElastiCache, the parameter group)",
        )
    return Check("redis eviction", True, "maxmemory-policy noeviction")


def _persistence(client: redis.Redis) -> Check:
    appendonly, save = _config(client, "appendonly"), _config(client, "save")
    if appendonly is None and save is None:
        return Check(
            "redis persistence",
            None,
            "not checked: this Redis refuses CONFIG GET (a managed service?)",
            "turn on AOF (appendonly yes) or snapshots in its configuration (on ElastiCache, "
            "backups or Multi-AZ with a replica)",
        )
    if appendonly == "yes":
        return Check("redis persistence", True, "AOF on (appendonly yes)")
    if save:
        return Check("redis persistence", True, f"RDB snapshots (save {save}), AOF off")
    return Check(
        "redis persistence",
        False,
        "no persistence (appendonly no, no save schedule): a restart loses every queued "
        "and scheduled task until the reconciler rebuilds them from the ledger",
        "turn on AOF: `redis-server --appendonly yes` (or CONFIG SET appendonly yes then "
        "CONFIG REWRITE)",
    )
