"""The one way a process gets a Redis client: REDIS_URL, its TLS settings, its password.

Every Redis user (the conversation locks, the fleet rate limiter, the token cache, the
counters, the CLI, `doctor`, the ingest) gets its client here, so a `rediss://` REDIS_URL
is verified the same way everywhere (`dlq.redistls`). Celery's broker, which kombu
connects, takes the same TLS options through celeryconfig.py's `broker_use_ssl`.
"""

from __future__ import annotations

from typing import Any

import redis

from dlq.redistls import RedisTls
from dlq.secrets.redis_auth import RedisCredentials
from dlq.settings import Settings


def redis_client(
    settings: Settings, credentials: RedisCredentials | None = None, **options: Any
) -> redis.Redis:
    """A client of REDIS_URL (it connects on first use) with REDIS_TLS_* applied,
    authenticated with `credentials` when the password is kept in a secret store
    (REDIS_PASSWORD_SECRET_ARN; default: REDIS_URL's own password, if any)."""
    tls = RedisTls.from_settings(settings).client_options(settings.redis_url)
    if credentials is None:
        return redis.Redis.from_url(settings.redis_url, **tls, **options)
    return redis.Redis.from_url(
        credentials.url,
        credential_provider=credentials,
        redis_connect_func=credentials.authenticate,
        **tls,
        **options,
    )


def decoded(value: bytes | str) -> str:
    """A Redis reply as text (clients built without `decode_responses` answer bytes)."""
    return value.decode() if isinstance(value, bytes) else value
