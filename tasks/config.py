"""The worker process's settings and credentials: read once, on first use (never at import)."""

from __future__ import annotations

from functools import cache

from dlq.errors import ConfigurationError
from dlq.genesys.credentials import GenesysCredentials
from dlq.secrets.redis_auth import RedisCredentials
from dlq.settings import Settings, load_settings


@cache
def settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()


@cache
def redis_credentials() -> RedisCredentials | None:
    """The password REDIS_PASSWORD_SECRET_ARN names (None: REDIS_URL's own), one per
    process: its Redis clients and Celery's broker share what a refusal taught one."""
    return RedisCredentials.from_settings(settings())


@cache
def genesys_credentials() -> GenesysCredentials:
    """The OAuth client's id and secret, plain or by reference, one per process."""
    return GenesysCredentials.from_settings(settings())


def broker_credentials() -> RedisCredentials:
    """kombu's `credential_provider` for the broker (celeryconfig names it in the URL)."""
    credentials = redis_credentials()
    if credentials is None:
        raise ConfigurationError(
            "the broker URL names a credential provider but REDIS_PASSWORD_SECRET_ARN is not set"
        )
    return credentials


def forget() -> None:
    """Read the settings and credentials again on next use (tests, reloads)."""
    settings.cache_clear()
    redis_credentials.cache_clear()
    genesys_credentials.cache_clear()
